"""Post-training int8 quantisation with ``onnxruntime.quantization``."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from distillery.io import atomic_path

logger = logging.getLogger(__name__)


def dynamic_int8(src: str | Path, dst: str | Path) -> None:
    """Dynamic quantisation: int8 weights, activations quantised on the fly per batch.

    The exporter's intermediate ``value_info`` annotations are dropped first: ONNX shape
    inference, which the quantiser runs, recomputes them and rejects some of the exporter's.
    """
    model = onnx.load(str(src))
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(dst) as tmp:
        clean = Path(tmpdir) / "clean.onnx"
        onnx.save(model, str(clean))
        quantize_dynamic(str(clean), str(tmp), weight_type=QuantType.QInt8)
    logger.info("quantised %s -> %s", src, dst)
