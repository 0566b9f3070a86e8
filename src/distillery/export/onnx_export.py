"""ONNX export with ``torch.onnx`` (dynamic batch and sequence axes, label names and
tokenisation settings in the metadata) and validation against torch."""

from __future__ import annotations

import logging
import math
import typing
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch

from distillery.core.io import atomic_path

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask")
"""Inputs of every export; ``token_type_ids`` is added for sentence pairs of families that
have token types (see :func:`distillery.data.prepared.model_inputs`)."""
OPTIONAL_INPUTS = ("token_type_ids",)
Exporter = Literal["torchscript", "dynamo"]
EXPORTERS: tuple[str, ...] = typing.get_args(Exporter)


class _Logits(torch.nn.Module):
    """``(input_ids, attention_mask[, token_type_ids]) -> logits``: the interface of every
    ONNX file."""

    def __init__(self, model: torch.nn.Module, additive_mask: bool = False) -> None:
        super().__init__()
        self.model = model
        self.additive_mask = additive_mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        if self.additive_mask:
            attention_mask = _additive_mask(attention_mask)
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def _additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` 0/1 padding mask -> ``(B, 1, T, T)`` additive float mask (0 where kept, the
    dtype's minimum where padded), which transformers' eager attention takes as is.

    Built as ``Where(Cast(Sub(1, Expand(Unsqueeze(mask)))))``: the mask pattern ONNX Runtime's
    BERT attention fusion recognises. The one transformers 5 builds itself (``GatherND`` over
    index ranges) is not, so without this no ``Attention`` op is fused.
    """
    b, t = mask.shape
    expanded = mask[:, None, None, :].expand(b, 1, t, t)  # (B, 1, T, T)
    return torch.where((1 - expanded).to(torch.bool), torch.finfo(torch.float32).min, 0.0)


def export(
    model: torch.nn.Module,
    dst: str | Path,
    opset: int,
    input_names: Sequence[str] = INPUTS,
    metadata: dict[str, str] | None = None,
    eager_attention: bool = True,
    exporter: Exporter = "torchscript",
) -> None:
    """Export ``model`` to a single self-contained ONNX file at ``dst``.

    Args:
        model: a sequence classifier (returns ``.logits``).
        dst: the ``.onnx`` file (written atomically: nothing is left on failure).
        opset: ONNX opset version.
        input_names: ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``,
            in that order; all with dynamic batch and sequence axes.
        metadata: string key/values stored in the file's ``metadata_props``.
        eager_attention: trace the family's eager (matmul + softmax) attention instead of
            SDPA, with the padding mask expanded in the graph to the additive form ONNX
            Runtime's transformer optimizer fuses into ``Attention`` ops (the ``fused``
            recipes of :mod:`distillery.export.quantize`). The model's own setting is restored
            afterwards; families without transformers' attention interface export as is.
            Ignored for a causal-LM teacher in classifier form: its mask must stay causal.
        exporter: ``torchscript`` (``torch.onnx.export(dynamo=False)``: 0.6 s for a
            3-layer student where the dynamo exporter takes 7.5 s, and the graph ONNX
            Runtime's optimizer was written for: it also fuses ``EmbedLayerNormalization``)
            or ``dynamo`` (``torch.export``; the one left once torch drops TorchScript).

    Raises:
        ValueError: bad ``input_names`` or ``exporter``.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    from distillery.modeling.loading import is_prompted

    if hasattr(model, "config") and is_prompted(model.config):
        eager_attention = False
    input_names = list(input_names)
    allowed = list(INPUTS) + list(OPTIONAL_INPUTS)
    if input_names != allowed[: len(input_names)] or len(input_names) < len(INPUTS):
        raise ValueError(f"input_names must be {allowed[:2]} or {allowed}, got {input_names}")
    model.eval()
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in input_names)
    attention = "eager" if eager_attention else None
    with atomic_path(dst) as tmp, warnings.catch_warnings(), _attention(model, attention) as eager:
        warnings.simplefilter("ignore")
        # In eval mode: the TorchScript exporter restores the wrapper's mode afterwards, and
        # a new module's mode is training, which would leave ``model`` in training mode.
        wrapped = _Logits(model, additive_mask=eager).eval()
        if exporter == "torchscript":
            axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
            torch.onnx.export(wrapped, example, str(tmp), dynamo=False,
                              dynamic_axes={**axes, "logits": {0: "batch"}},
                              input_names=input_names, output_names=["logits"],
                              opset_version=opset)
        else:
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
            program = torch.onnx.export(
                wrapped, example, dynamo=True,
                dynamic_shapes={name: {0: batch, 1: seq} for name in input_names},
                input_names=input_names, output_names=["logits"], opset_version=opset,
                external_data=False, optimize=True,
            )
            program.save(str(tmp), external_data=False)
        if metadata:
            set_metadata(tmp, metadata)
    logger.info("exported %s (%.1f MB)", dst, Path(dst).stat().st_size / 1e6)


@contextmanager
def _attention(model: torch.nn.Module, implementation: str | None) -> Iterator[bool]:
    """Switch a transformers model to the attention ``implementation`` (``None``: leave it)
    for the duration of the block, then restore its own setting.

    Yields whether the model runs ``implementation`` through transformers' attention
    interface in the block (families with their own attention, e.g. DeBERTa-v2, do not).
    """
    original = getattr(getattr(model, "config", None), "_attn_implementation", None)
    settable = hasattr(model, "set_attn_implementation") and model._can_set_attn_implementation()
    if implementation is None or original is None or not settable:
        yield False
        return
    if original == implementation:
        yield True
        return
    model.set_attn_implementation(implementation)
    try:
        yield True
    finally:
        model.set_attn_implementation(original)


def copy_metadata(src: str | Path, dst: str | Path) -> None:
    """Give the ONNX file ``dst`` the ``metadata_props`` of ``src`` (keys of ``dst`` that
    ``src`` lacks are kept)."""
    metadata = read_metadata(src)
    if metadata:
        set_metadata(dst, metadata)


def set_metadata(path: str | Path, metadata: dict[str, str]) -> None:
    """Store string key/values in the ``metadata_props`` of the ONNX file at ``path``
    (replacing keys already there), atomically."""
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({k: str(v) for k, v in metadata.items()})
    onnx.helper.set_model_props(model, props)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (without loading its weights)."""
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


@dataclass
class Validation:
    """Agreement of an ONNX model with its PyTorch source on the eval set."""

    max_abs_diff: float
    agreement: float
    logit_range: float = 1.0
    """max - min of the reference logits (every example and class): the scale of ``rel_diff``."""

    @property
    def rel_diff(self) -> float:
        """``max_abs_diff`` as a fraction of the reference logits' range: comparable across tasks
        (20-class logits spread wider than 2-class ones, and so does int8 noise on them)."""
        return self.max_abs_diff / self.logit_range if self.logit_range > 0 else math.inf

    def problems(self, name: str, min_agreement: float, max_abs_diff: float | None = None,
                 max_rel_diff: float | None = None) -> list[str]:
        out = []
        if max_abs_diff is not None and not self.max_abs_diff <= max_abs_diff:
            out.append(f"{name}: max |Δlogit| {self.max_abs_diff:.3g} > allowed {max_abs_diff}")
        if max_rel_diff is not None and not self.rel_diff <= max_rel_diff:
            out.append(f"{name}: max |Δlogit| {self.max_abs_diff:.3g} is {self.rel_diff:.3g} of "
                       f"the logits' range {self.logit_range:.3g} > allowed {max_rel_diff}")
        if not self.agreement >= min_agreement:
            out.append(f"{name}: argmax agreement {self.agreement:.4f} < required {min_agreement}")
        return out


def compare(reference: np.ndarray, candidate: np.ndarray) -> Validation:
    """Max absolute logit difference, argmax agreement and the reference logits' range of two
    ``(N, C)`` arrays."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {candidate.shape}")
    return Validation(
        max_abs_diff=float(np.abs(reference - candidate).max()),
        agreement=float((reference.argmax(-1) == candidate.argmax(-1)).mean()),
        logit_range=float(reference.max() - reference.min()),
    )
