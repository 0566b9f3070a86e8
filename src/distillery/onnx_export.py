"""ONNX export with ``torch.onnx`` (dynamic batch and sequence axes) and validation."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distillery.io import atomic_path

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask")


class _Logits(torch.nn.Module):
    """``(input_ids, attention_mask) -> logits``: the interface every ONNX file has."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, C)


def export(model: torch.nn.Module, dst: str | Path, opset: int) -> None:
    """Export ``model`` to a single self-contained ONNX file at ``dst``."""
    model.eval()
    example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
    with atomic_path(dst) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Logits(model), example, dynamo=True, dynamic_shapes=dynamic,
            input_names=list(INPUTS), output_names=["logits"], opset_version=opset,
            external_data=False, optimize=True,
        )
        program.save(str(tmp), external_data=False)
    logger.info("exported %s (%.1f MB)", dst, Path(dst).stat().st_size / 1e6)


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
