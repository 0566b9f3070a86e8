"""What the pipeline needs to know about one encoder family, and the registry of families.

A :class:`Family` names, for one ``model_type`` of transformers, where the transformer layers
live (weight transfer, pruning, parameter counts), which config attributes hold the four NAS
genes, which modules form the classification head (trained in full under LoRA) and, where
structured pruning is supported, the :class:`Structure` of one layer (which ``nn.Linear``
modules hold the attention heads and the FFN neurons).
Everything else is generic and lives in :mod:`distillery.modeling.families`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import PretrainedConfig

from distillery.core.registry import Registry


@dataclass(frozen=True)
class Structure:
    """Where the heads and FFN neurons of one transformer layer live (dotted paths relative to
    the layer), for structured pruning (:mod:`distillery.compress.pruning.structured`)."""

    attention: str
    """Self-attention module whose forward reshapes q / k / v into heads."""
    qkv: tuple[str, str, str]
    """Query, key and value ``nn.Linear`` (output rows: head after head, ``head_size`` each)."""
    attention_out: str
    """``nn.Linear`` that mixes the concatenated heads back to the hidden size."""
    ffn_in: str
    """``nn.Linear`` hidden -> intermediate (one output row per FFN neuron)."""
    ffn_out: str
    """``nn.Linear`` intermediate -> hidden (one input column per FFN neuron)."""
    heads_attr: str = "num_attention_heads"
    """Attribute of ``attention`` holding its head count."""
    all_head_size_attr: str | None = "all_head_size"
    """Attribute of ``attention`` holding ``heads * head_size``, if it has one."""


BERT_STRUCTURE = Structure(
    attention="attention.self",
    qkv=("attention.self.query", "attention.self.key", "attention.self.value"),
    attention_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
)
"""The layer of BERT and of the families that copy it (RoBERTa, ELECTRA)."""


@dataclass(frozen=True)
class Family:
    """How the pipeline handles the encoders of one family."""

    name: str
    model_types: tuple[str, ...]
    """``config.model_type`` values this family covers."""
    layers: str
    """Dotted path of the ``ModuleList`` of transformer layers in the *ForSequenceClassification
    model, e.g. ``bert.encoder.layer``."""
    head: tuple[str, ...]
    """Modules of the classification head: trained in full under LoRA (``modules_to_save``)."""
    gene_attrs: dict[str, str] = field(default_factory=dict)
    """Config attribute of each gene, where it is not the BERT name."""
    fix_config: Callable[[PretrainedConfig], None] | None = None
    """Makes a config with new gene values consistent (derived sizes), in place."""
    structure: Structure | None = None
    """Modules of one layer for structured pruning; None: not supported for this family."""

    def attr(self, gene: str) -> str:
        """The config attribute that holds ``gene``."""
        return self.gene_attrs.get(gene, gene)


REGISTRY: Registry[Family] = Registry("encoder family")
"""``model_type`` -> family."""


def register(family: Family) -> Family:
    """Add ``family`` to :data:`REGISTRY` under each of its model types."""
    for model_type in family.model_types:
        REGISTRY[model_type] = family
    return family
