"""Post-training quantisation and graph optimisation of an exported ONNX model: recipes
behind one registry (as :mod:`distillery.search`'s samplers).

``apply(recipe, src, dst, ...)`` writes ``dst`` atomically from ``src`` (left untouched),
keeps the source's ``metadata_props`` and returns facts for the caller's metrics.

=======================  ===================================================================
``dynamic``              dynamic int8, one scale per weight tensor: the baseline
``dynamic_per_channel``  dynamic int8, one scale per output channel
``fused``                fp32 with ONNX Runtime's transformer fusions (Attention, GELU…),
                         layer norms as primitive ops (faster on the CPU provider), the
                         last layer's position-wise ops on the pooled token only
``fused_dynamic``        ``fused``, then dynamic int8 (the default int8 recipe)
``static``               static int8 QDQ, activation ranges calibrated on real inputs
``fp16``                 float16 for GPU providers (float32 logits, int64 inputs)
=======================  ===================================================================

To add a recipe, write a module with a function ``(src, dst, target, workdir, *, options)
-> dict`` like :func:`distillery.export.quantize.dynamic.dynamic` and add it below.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from distillery.core.io import atomic_path
from distillery.core.registry import Registry
from distillery.export.onnx_export import copy_metadata
from distillery.export.quantize import dynamic, fp16, fused, static
from distillery.export.quantize.graph import Target, quantized_facts, save_clean

logger = logging.getLogger(__name__)

Recipe = Callable[..., dict[str, int]]

RECIPES: Registry[Recipe] = Registry("quantisation recipe", {
    "dynamic": dynamic.dynamic,
    "dynamic_per_channel": dynamic.dynamic_per_channel,
    "fused": fused.fused,
    "fused_dynamic": fused.fused_dynamic,
    "static": static.static,
    "fp16": fp16.fp16,
})
INT8_RECIPES = ("dynamic", "dynamic_per_channel", "fused_dynamic", "static")
"""The recipes that give an int8 model (``export.int8_recipe`` takes one of these)."""


def options_of(recipe: str) -> list[str]:
    """The keyword options a recipe takes."""
    params = inspect.signature(get(recipe)).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def get(recipe: str) -> Recipe:
    """The recipe registered as ``recipe`` (an unknown name: one error listing the recipes)."""
    return RECIPES.lookup(recipe)


def apply(recipe: str, src: str | Path, dst: str | Path, *, model_type: str, num_heads: int,
          hidden_size: int, calibration: list[dict[str, np.ndarray]] | None = None,
          **options) -> dict[str, int | str]:
    """Write the ``recipe`` variant of the ONNX model ``src`` to ``dst``.

    Args:
        recipe: a key of :data:`RECIPES`.
        src: an fp32 export of :func:`distillery.export.onnx_export.export` (eager attention for
            the ``fused`` recipes to find attention blocks).
        dst: the ``.onnx`` file to write (atomically: nothing is left on failure).
        model_type: the transformers ``model_type`` of the exported model.
        num_heads: attention heads per layer.
        hidden_size: width of the encoder.
        calibration: input feeds (input name -> int64 array, e.g. tokenised train
            sentences) for ``static``; ignored by the others.
        **options: the recipe's own keyword options (see :func:`options_of`).

    Returns:
        ``recipe``, ``nodes`` and ``quantized_ops`` of the result, and the recipe's facts
        (``fused_<Op>`` counts, ``calibration_feeds``).

    Raises:
        ValueError: unknown recipe or option, or a recipe's own check.
        FileNotFoundError: ``src`` does not exist.
    """
    run = get(recipe)
    unknown = sorted(set(options) - set(options_of(recipe)))
    if unknown:
        raise ValueError(f"recipe {recipe!r} has no option {', '.join(unknown)}; its options: "
                         + (", ".join(options_of(recipe)) or "none"))
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"ONNX model {src} not found")
    target = Target(model_type, num_heads, hidden_size, calibration)
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(dst) as tmp:
        clean = Path(tmpdir) / "clean.onnx"
        save_clean(src, clean)
        facts = run(clean, tmp, target, Path(tmpdir), **options)
        copy_metadata(src, tmp)
        facts = {"recipe": recipe, **quantized_facts(tmp), **facts}
    logger.info("%s: %s -> %s %s", recipe, src, dst, facts)
    return facts


__all__ = ["INT8_RECIPES", "RECIPES", "Target", "apply", "get", "options_of"]
