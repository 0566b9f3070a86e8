"""ONNX export with ``torch.onnx`` (dynamic batch and sequence axes, label names and
tokenisation settings in the metadata) and validation against torch."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from distillery.io import atomic_path

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask")
"""Inputs of every export; ``token_type_ids`` is added for sentence pairs of families that
have token types (see :func:`distillery.data.model_inputs`)."""
OPTIONAL_INPUTS = ("token_type_ids",)


class _Logits(torch.nn.Module):
    """``(input_ids, attention_mask[, token_type_ids]) -> logits``: the interface of every
    ONNX file."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export(
    model: torch.nn.Module,
    dst: str | Path,
    opset: int,
    input_names: Sequence[str] = INPUTS,
    metadata: dict[str, str] | None = None,
) -> None:
    """Export ``model`` to a single self-contained ONNX file at ``dst``.

    Args:
        model: a sequence classifier (returns ``.logits``).
        dst: the ``.onnx`` file (written atomically: nothing is left on failure).
        opset: ONNX opset version.
        input_names: ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``,
            in that order; all with dynamic batch and sequence axes.
        metadata: string key/values stored in the file's ``metadata_props``.
    """
    input_names = list(input_names)
    allowed = list(INPUTS) + list(OPTIONAL_INPUTS)
    if input_names != allowed[: len(input_names)] or len(input_names) < len(INPUTS):
        raise ValueError(f"input_names must be {allowed[:2]} or {allowed}, got {input_names}")
    model.eval()
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in input_names)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {name: {0: batch, 1: seq} for name in input_names}
    with atomic_path(dst) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Logits(model), example, dynamo=True, dynamic_shapes=dynamic,
            input_names=input_names, output_names=["logits"], opset_version=opset,
            external_data=False, optimize=True,
        )
        program.save(str(tmp), external_data=False)
        if metadata:
            set_metadata(tmp, metadata)
    logger.info("exported %s (%.1f MB)", dst, Path(dst).stat().st_size / 1e6)


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


def session_inputs(session) -> list[str]:
    """Input names an ONNX Runtime session declares."""
    return [i.name for i in session.get_inputs()]


@dataclass
class Validation:
    """Agreement of an ONNX model with its PyTorch source on the eval set."""

    max_abs_diff: float
    agreement: float

    def problems(self, name: str, max_abs_diff: float, min_agreement: float) -> list[str]:
        out = []
        if not self.max_abs_diff <= max_abs_diff:
            out.append(f"{name}: max |Δlogit| {self.max_abs_diff:.3g} > allowed {max_abs_diff}")
        if not self.agreement >= min_agreement:
            out.append(f"{name}: argmax agreement {self.agreement:.4f} < required {min_agreement}")
        return out


def compare(reference: np.ndarray, candidate: np.ndarray) -> Validation:
    """Max absolute logit difference and argmax agreement of two ``(N, C)`` arrays."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {candidate.shape}")
    return Validation(
        max_abs_diff=float(np.abs(reference - candidate).max()),
        agreement=float((reference.argmax(-1) == candidate.argmax(-1)).mean()),
    )
