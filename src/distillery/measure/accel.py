"""GPU execution providers set up for honest timing.

TensorRT builds an engine per input shape unless it is given an explicit optimisation
profile; without one, the first call of every new sequence length builds an engine inside
the timed loop. :func:`trt_options` declares min / opt / max shapes for every input (batch 1..
``max_batch``, tokens 1..``max_length``) and turns the engine and timing caches on, so an
engine is built once, at warm-up, and reused by later runs. CUDA sessions run through ONNX
Runtime's I/O binding (:func:`io_binding_runner`): inputs are placed on the device
explicitly and the output is bound on the device, so no hidden host-side allocation is
timed; the logits are copied back to the host at the end of each call, as a caller needs them.

Nothing here runs without a CUDA device: the benchmark calls it only for providers that
:func:`distillery.measure.bench.available_providers` found usable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from distillery.measure.bench import PROVIDERS

logger = logging.getLogger(__name__)


def trt_options(
    input_names: Sequence[str],
    max_batch: int,
    max_length: int,
    cache_dir: str | Path,
    opt_batch: int = 1,
    opt_length: int | None = None,
    fp16: bool = False,
) -> dict[str, str]:
    """TensorRT execution-provider options: one explicit optimisation profile, caches on.

    Args:
        input_names: the model's inputs (all ``(batch, tokens)``).
        max_batch / max_length: the largest shape the profile admits.
        cache_dir: where engines and timing caches are kept between runs.
        opt_batch / opt_length: the shape TensorRT tunes for (batch-1 latency by default;
            ``opt_length`` defaults to half of ``max_length``).
        fp16: let TensorRT choose fp16 kernels.

    Raises:
        ValueError: an empty input list or a non-positive shape.
    """
    if not input_names or min(max_batch, max_length, opt_batch) < 1:
        raise ValueError(f"bad profile: inputs {list(input_names)}, max {max_batch}x{max_length}")
    opt_length = opt_length or max(1, max_length // 2)
    if opt_batch > max_batch or opt_length > max_length:
        raise ValueError(f"opt shape {opt_batch}x{opt_length} exceeds max {max_batch}x{max_length}")

    def shapes(batch: int, tokens: int) -> str:
        return ",".join(f"{name}:{batch}x{tokens}" for name in input_names)

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return {
        "trt_profile_min_shapes": shapes(1, 1),
        "trt_profile_opt_shapes": shapes(opt_batch, opt_length),
        "trt_profile_max_shapes": shapes(max_batch, max_length),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache_dir),
        "trt_fp16_enable": str(bool(fp16)),
    }


def providers_for(provider: str, trt: dict[str, str] | None = None,
                  device_id: int = 0) -> list:
    """The provider list of a session pinned to ``provider`` (``cuda`` / ``tensorrt``), with
    CUDA then CPU as fallbacks for operators the first does not support."""
    cuda = (PROVIDERS["cuda"], {"device_id": str(device_id)})
    if provider == "cuda":
        return [cuda, PROVIDERS["cpu"]]
    if provider == "tensorrt":
        if trt is None:
            raise ValueError("TensorRT needs its options (see trt_options)")
        return [(PROVIDERS["tensorrt"], {"device_id": str(device_id), **trt}), cuda,
                PROVIDERS["cpu"]]
    raise ValueError(f"not a GPU provider: {provider!r} (cuda, tensorrt)")


def session(path: str | Path, provider: str, *, input_names: Sequence[str], max_batch: int,
            max_length: int, cache_dir: str | Path, device_id: int = 0):
    """An ONNX Runtime session on ``cuda`` or ``tensorrt``.

    Raises:
        RuntimeError: the provider could not be enabled for this model.
    """
    import onnxruntime as ort

    trt = trt_options(input_names, max_batch, max_length, cache_dir) \
        if provider == "tensorrt" else None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts,
                                providers=providers_for(provider, trt, device_id))
    if PROVIDERS[provider] not in sess.get_providers():
        raise RuntimeError(f"{PROVIDERS[provider]} could not be enabled for {path}")
    return sess


def io_binding_runner(sess, device_id: int = 0) -> Callable[[dict[str, np.ndarray]], object]:
    """``run(feeds) -> logits`` through I/O binding: inputs copied to the device, the output
    bound on the device and copied back once at the end of the call."""
    import onnxruntime as ort

    names = [i.name for i in sess.get_inputs()]
    binding = sess.io_binding()

    def run(feeds: dict[str, np.ndarray]) -> object:
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for name in names:
            value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(feeds[name]), "cuda",
                                                     device_id)
            binding.bind_ortvalue_input(name, value)
        binding.bind_output("logits", "cuda", device_id)
        sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    return run
