"""fp16 weights and activations for GPU execution providers (CUDA, TensorRT), with float32
logits and int64 inputs as before (``keep_io_types``). Runs on CPU too, slowly."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16

from distillery.export.quantize.graph import Target


def fp16(src: Path, dst: Path, target: Target, workdir: Path) -> dict[str, int]:
    """Convert every float32 initializer and op to float16; casts at the inputs/outputs."""
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return {}
