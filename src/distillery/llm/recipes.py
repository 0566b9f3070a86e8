"""Weight recipes of the LLM generation variants, one registry (``llm.variants`` names them).

- ``fp32``: the exported decoder as is.
- ``int8``: weight-only int8 — ONNX Runtime's ``MatMulNBitsQuantizer`` with 8 bits,
  symmetric round-to-nearest per block of ``llm.block_size`` input rows, on every ``MatMul``
  with a constant weight (projections and the LM head; the embedding stays fp32: ONNX Runtime
  block-quantises ``Gather`` in 4 bits only). Activations stay fp32, which is why it survives
  the activation outliers that break per-tensor dynamic int8 (``export`` skips that for causal
  teachers).
- ``int4``: 4-bit round to nearest with integer zero points (the quantiser's default) on every
  ``MatMul`` but the LM head, which gets weight-only int8 (the head's error reaches every
  token's distribution: on SmolLM2-135M, next-token KL to fp32 0.392 with a 4-bit head, 0.295
  with an 8-bit one, for 13 MB more), and the embedding (4-bit ``GatherBlockQuantized``; left in
  fp32, SmolLM2-135M's embedding alone is 113 MB).
- ``int4_hqq``: 4-bit Half-Quadratic Quantization (HQQ: scales and float zero points fitted to
  each block, no calibration data) on every ``MatMul``, then the embedding as in ``int4``.
  Closer to fp32, but ONNX Runtime 1.31 has no fast CPU kernel for float zero points.

``int8`` and ``int4`` set ``accuracy_level`` 4: the kernels quantise each block of activations
to int8 on the fly and multiply in integers. Without it ONNX Runtime 1.31 decodes int8 weights
through a slow path.

Each recipe is ``(src, dst, block_size) -> None``, writing one self-contained file.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from distillery.core.io import atomic_path
from distillery.core.registry import Registry

logger = logging.getLogger(__name__)

Recipe = Callable[[Path, Path, int], None]
RECIPES: Registry[Recipe] = Registry("LLM weight recipe")


@RECIPES.register("fp32")
def fp32(src: Path, dst: Path, block_size: int) -> None:
    """The exported decoder, unchanged."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _head(model) -> list[str]:
    """The ``MatMul`` node(s) writing the graph's ``logits`` (the LM head)."""
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and "logits" in n.output]


def _matmul_nbits(src: Path, dst: Path, *configs) -> None:
    """Apply ONNX Runtime's ``MatMulNBitsQuantizer`` once per config, in order; a config
    given as ``(config, "no-head")`` leaves the LM head to the next one."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quant_logger = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quant_logger.level
    quant_logger.setLevel(logging.ERROR)  # one INFO line per node, opset warnings otherwise
    model = onnx.load(str(src))
    try:
        for config in configs:
            config, skip = config if isinstance(config, tuple) else (config, None)
            q = MatMulNBitsQuantizer(model, bits=config.bits, block_size=config.block_size,
                                     algo_config=config,
                                     nodes_to_exclude=_head(model) if skip else None)
            q.process()
            model = q.model.model
    finally:
        quant_logger.setLevel(level)
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))


@RECIPES.register("int8")
def int8(src: Path, dst: Path, block_size: int) -> None:
    """Weight-only int8 ``MatMulNBits`` (symmetric, round to nearest)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig

    _matmul_nbits(src, dst, DefaultWeightOnlyQuantConfig(
        block_size=block_size, is_symmetric=True, bits=8, accuracy_level=4))


@RECIPES.register("int4_hqq")
def int4_hqq(src: Path, dst: Path, block_size: int) -> None:
    """4-bit HQQ ``MatMulNBits``, then a 4-bit round-to-nearest embedding."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        HQQWeightOnlyQuantConfig,
    )

    _matmul_nbits(src, dst, HQQWeightOnlyQuantConfig(block_size=block_size, bits=4),
                  DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=False, bits=4,
                                               op_types_to_quantize=("Gather",),
                                               quant_axes=(("Gather", 1),)))


@RECIPES.register("int4")
def int4(src: Path, dst: Path, block_size: int) -> None:
    """4-bit round-to-nearest ``MatMulNBits`` (the LM head in 8 bits) + a 4-bit
    ``GatherBlockQuantized`` embedding."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig

    _matmul_nbits(src, dst, (DefaultWeightOnlyQuantConfig(
        block_size=block_size, is_symmetric=False, bits=4, accuracy_level=4), "no-head"),
        DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=8,
                                     accuracy_level=4),
        DefaultWeightOnlyQuantConfig(
        block_size=block_size, is_symmetric=False, bits=4, accuracy_level=4,
        op_types_to_quantize=("Gather",),
        quant_axes=(("Gather", 1),)))
