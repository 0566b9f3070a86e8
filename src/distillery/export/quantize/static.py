"""Static int8 in QDQ form: activation ranges calibrated offline on real inputs, so no
run-time quantisation of activations. ORT's CPU provider fuses each
``DequantizeLinear -> MatMul -> QuantizeLinear`` into an integer kernel at load time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from distillery.export.quantize.graph import Target

logger = logging.getLogger(__name__)

CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax,
                       "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}


class _Feeds(CalibrationDataReader):
    """The calibration feeds, restricted to the inputs the graph declares."""

    def __init__(self, feeds: list[dict[str, np.ndarray]], names: list[str]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = (
            {n: np.asarray(f[n], dtype=np.int64) for n in names} for f in feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def static(src: Path, dst: Path, target: Target, workdir: Path, *,
           calibrate_method: Literal["minmax", "entropy", "percentile"] = "minmax",
           activation_type: Literal["quint8", "qint8"] = "quint8",
           reduce_range: bool = True,
           op_types: tuple[str, ...] = ("MatMul", "Gemm", "Gather")) -> dict[str, int]:
    """QDQ static int8: per-channel int8 weights, activations calibrated on ``calibration``.

    Args:
        calibrate_method: ``minmax`` (observed range), ``entropy`` (KL-optimal clip) or
            ``percentile`` (99.999th percentile clip). The last two build histograms of
            each tensor over all feeds, so their feeds must share one shape (pad them).
        activation_type: ``quint8`` (default) gives the u8 x s8 products that x86 MLAS
            kernels are fastest at (ORT's CPU guidance); ``qint8`` is the choice for ARM and
            for TensorRT.
        reduce_range: 7-bit weights: per-channel 8-bit weights saturate u8 x s8 sums on
            x86 without VNNI (see ``dynamic_per_channel``).
        op_types: ops quantised; the matmuls carry the time, the embedding ``Gather`` most of
            the bytes, and the accuracy is best kept when softmax, layer norms and residual
            adds stay float.
    """
    if not target.calibration:
        raise ValueError("the static recipe needs calibration feeds (a non-empty list of "
                         "input dicts)")
    if calibrate_method not in CALIBRATION_METHODS:
        raise ValueError(f"calibrate_method {calibrate_method!r} is not one of "
                         + ", ".join(CALIBRATION_METHODS))
    if calibrate_method != "minmax":
        shapes = {tuple(np.shape(v) for v in feed.values()) for feed in target.calibration}
        if len(shapes) > 1:
            raise ValueError(f"calibrate_method {calibrate_method!r} stacks every tensor over "
                             f"the calibration feeds, which have {len(shapes)} different "
                             "shapes: pad them to one length (minmax takes any)")
    prepared = workdir / "prepared.onnx"
    # ORT's basic optimisations and ONNX shape inference; the symbolic one stops at the
    # exporter's position-id slice (``Min(max_positions, sequence)``).
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    names = [i.name for i in onnx.load(str(prepared), load_external_data=False).graph.input]
    quantize_static(
        str(prepared), str(dst), _Feeds(target.calibration, names),
        quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
        activation_type=QuantType.QUInt8 if activation_type == "quint8" else QuantType.QInt8,
        weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types),
        calibrate_method=CALIBRATION_METHODS[calibrate_method],
    )
    return {"calibration_feeds": len(target.calibration)}
