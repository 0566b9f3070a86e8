"""What every recipe shares: the cleaned source graph, op counts and the recipe's inputs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

QUANTIZED_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QGemm",
                 "QLinearMatMul", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear")
"""Op types that only a quantised graph holds; counted in every recipe's facts."""


@dataclass(frozen=True)
class Target:
    """What a recipe may need to know about the model besides its graph.

    Attributes:
        model_type: the transformers ``model_type`` (``bert``, ``roberta``, ``distilbert``…).
        num_heads: attention heads per layer.
        hidden_size: width of the encoder.
        calibration: input feeds (name -> int64 array) for static quantisation.
    """

    model_type: str
    num_heads: int
    hidden_size: int
    calibration: list[dict[str, np.ndarray]] | None = None


def save_clean(src: str | Path, dst: str | Path) -> None:
    """Copy the ONNX file ``src`` to ``dst`` without the exporter's intermediate
    ``value_info``: ONNX shape inference, which the quantisers and the optimizer run,
    recomputes them and rejects some of the exporter's annotations."""
    model = onnx.load(str(src))
    del model.graph.value_info[:]
    onnx.save(model, str(dst))


def op_counts(path: str | Path) -> Counter[str]:
    """Number of nodes of each op type in the main graph of the ONNX file at ``path``."""
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def quantized_facts(path: str | Path) -> dict[str, int]:
    """``quantized_ops`` (nodes of :data:`QUANTIZED_OPS`) and ``nodes`` of a model."""
    ops = op_counts(path)
    return {"nodes": sum(ops.values()), "quantized_ops": sum(ops[op] for op in QUANTIZED_OPS)}
