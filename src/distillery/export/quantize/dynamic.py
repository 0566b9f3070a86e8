"""Dynamic int8: weights quantised offline, activations per batch at run time
(``quantize_dynamic``, ``MatMulInteger`` on CPU). Needs no calibration data."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from distillery.export.quantize.graph import Target


def dynamic(src: Path, dst: Path, target: Target, workdir: Path, *,
            per_channel: bool = False, reduce_range: bool = False) -> dict[str, int]:
    """The baseline: ``quantize_dynamic`` defaults, one int8 scale per weight tensor.

    Args:
        per_channel: one scale per output channel of each weight.
        reduce_range: 7-bit weights, for x86 CPUs without VNNI where u8 x s8 products can
            saturate the 16-bit intermediate sums of ``vpmaddubsw``.
    """
    # ONNX shape inference gives no types past fused contrib ops (``Attention``…): those
    # tensors are float32.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                     per_channel=per_channel, reduce_range=reduce_range,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {}


def dynamic_per_channel(src: Path, dst: Path, target: Target, workdir: Path, *,
                        reduce_range: bool = True) -> dict[str, int]:
    """Dynamic int8 with one scale per output channel: a wide channel no longer coarsens
    the grid of every other.

    ``reduce_range`` is on by default: per-channel scales fill the full int8 range in every
    channel, and on x86 without VNNI (AVX2) the u8 x s8 pair sums then saturate. Measured
    on a tiny BERT (AVX2): max |Δlogit| 0.53 and 87.5% argmax agreement with 8-bit
    weights, 0.06 and 100% with 7-bit (per-tensor 8-bit: 0.05).
    """
    return dynamic(src, dst, target, workdir, per_channel=True, reduce_range=reduce_range)
