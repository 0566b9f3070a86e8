"""Causal-LM architectures: which ``model_type`` is a decoder, and where LoRA goes in it.

Registered in the project's one :class:`~distillery.core.registry.Registry`, like the encoder
families of :mod:`distillery.modeling.families`: one :class:`CausalArch` per ``model_type``
naming the LoRA target modules (attention and MLP projections). A decoder whose type is not
listed is still recognised from its config's ``architectures`` (``*ForCausalLM`` /
``*LMHeadModel``) and gets peft's ``all-linear`` targets (every linear layer but the output
head).

=========================================  ==============================================
model_type                                 LoRA targets
=========================================  ==============================================
llama, mistral, qwen2, qwen3, gemma,        q_proj, k_proj, v_proj, o_proj, gate_proj,
gemma2                                      up_proj, down_proj
gpt2                                        c_attn, c_proj (attention and MLP), c_fc
=========================================  ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from transformers import PretrainedConfig

from distillery.core.io import UserError
from distillery.core.registry import Registry
from distillery.modeling import families

Kind = Literal["causal", "encoder"]


@dataclass(frozen=True)
class CausalArch:
    """How the pipeline handles the decoders of one ``model_type``."""

    model_types: tuple[str, ...]
    lora_targets: tuple[str, ...]
    """Module-name suffixes that get LoRA adapters (attention and MLP projections)."""
    fan_in_fan_out: bool = False
    """The projections are ``Conv1D`` (weights stored ``(in, out)``, GPT-2), not ``nn.Linear``."""


CAUSAL: Registry[CausalArch] = Registry("causal-LM architecture")
"""``model_type`` -> architecture."""


def register(arch: CausalArch) -> CausalArch:
    """Add ``arch`` to :data:`CAUSAL` under each of its model types."""
    return CAUSAL.register(*arch.model_types)(arch)


LLAMA_LIKE = register(CausalArch(
    model_types=("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2"),
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
))
GPT2 = register(CausalArch(model_types=("gpt2",), lora_targets=("c_attn", "c_proj", "c_fc"),
                           fan_in_fan_out=True))

_CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")


def is_causal(config: PretrainedConfig) -> bool:
    """Whether ``config`` describes a decoder-only language model."""
    if config.model_type in families.REGISTRY:
        return False
    if config.model_type in CAUSAL:
        return True
    return any(a.endswith(_CAUSAL_HEADS) for a in (getattr(config, "architectures", None) or []))


def kind_of(config: PretrainedConfig, key: str = "teacher.model") -> Kind:
    """``encoder`` (a family of :mod:`distillery.modeling.families`) or ``causal`` (a decoder LM).

    Raises:
        UserError: neither (the message lists what is supported).
    """
    if config.model_type in families.REGISTRY:
        return "encoder"
    if is_causal(config):
        return "causal"
    raise UserError(
        f"{key}: model type {config.model_type!r} (architectures "
        f"{getattr(config, 'architectures', None)}) is neither a supported encoder ("
        + ", ".join(families.SUPPORTED) + ") nor a causal LM (" + ", ".join(CAUSAL)
        + ", or any *ForCausalLM)")


def lora_targets(config: PretrainedConfig) -> list[str] | str:
    """Default LoRA targets of a decoder: the registered projections, else ``all-linear``."""
    arch = CAUSAL.get(config.model_type)
    return list(arch.lora_targets) if arch is not None else "all-linear"


def fan_in_fan_out(config: PretrainedConfig) -> bool:
    """Whether the decoder's projections are GPT-2 style ``Conv1D`` (peft's ``fan_in_fan_out``)."""
    arch = CAUSAL.get(config.model_type)
    return arch is not None and arch.fan_in_fan_out
