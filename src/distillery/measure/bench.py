"""Latency and throughput measurement for torch models and ONNX Runtime sessions."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

logger = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


@dataclass
class Timing:
    """Batch-1 latency percentiles (ms) and batched throughput (examples/s)."""

    latency_ms_p50: float
    latency_ms_p95: float
    throughput_per_s: float | None
    """None when the variant was timed at batch 1 only."""
    round_ms: list[float] = field(default_factory=list)
    """The median batch-1 latency of each interleaved round (ms), in round order: a ratio of
    two variants round by round shows its spread."""


def time_calls(fn: Callable[[int], object], warmup: int, repeats: int) -> np.ndarray:
    """Call ``fn(i)`` ``warmup`` then ``repeats`` times; return the timed seconds."""
    for i in range(warmup):
        fn(i)
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        out[i] = time.perf_counter() - start
    return out


def measure(
    run: Callable[[dict[str, np.ndarray]], object],
    singles: list[dict[str, np.ndarray]],
    batch: dict[str, np.ndarray],
    warmup: int,
    repeats: int,
    throughput_batches: int,
) -> Timing:
    """Latency over ``singles`` (cycled) and throughput on ``batch``.

    Args:
        run: runs the model on numpy int64 inputs.
        singles: batch-1 inputs; call ``i`` uses ``singles[i % len(singles)]``.
        batch: one padded batch for the throughput measurement.
    """
    lat = time_calls(lambda i: run(singles[i % len(singles)]), warmup, repeats)
    thr = time_calls(lambda i: run(batch), min(warmup, 2), throughput_batches)
    n = len(next(iter(batch.values())))
    return Timing(
        latency_ms_p50=float(np.percentile(lat, 50) * 1e3),
        latency_ms_p95=float(np.percentile(lat, 95) * 1e3),
        throughput_per_s=float(n * throughput_batches / thr.sum()),
    )


SETTLE = 2
"""Untimed calls at the start of each variant's turn in a round of
:func:`measure_interleaved` (caches)."""
IDLE_S = 0.005
"""Pause before each variant's turn: the threads of the variant timed before go idle (torch's
OpenMP threads spin for a fraction of a millisecond after each call)."""


def measure_interleaved(
    runs: dict[str, Callable[[dict[str, np.ndarray]], object]],
    singles: list[dict[str, np.ndarray]],
    batch: dict[str, np.ndarray],
    warmup: int,
    repeats: int,
    throughput_batches: int,
    rounds: int,
    feeds: dict[str, tuple[list, dict[str, np.ndarray] | None]] | None = None,
) -> dict[str, Timing]:
    """Time several variants side by side, in interleaved rounds.

    ``singles`` / ``batch`` feed every variant except those in ``feeds`` (variant ->
    its own ``(singles, batch)``: a model with another tokenizer, e.g. a causal-LM teacher
    whose inputs carry its prompt, or an end-to-end runner fed raw texts). A variant whose
    ``batch`` is None is timed at batch 1 only.

    Every variant is warmed up, then each round times every variant in turn (the order
    rotates from round to round; :data:`SETTLE` untimed calls open each turn) for
    ``repeats // rounds`` batch-1 calls and
    ``throughput_batches // rounds`` batched calls, so slow drift of the machine (another
    process, thermal throttling) lands on all variants alike instead of on whichever runs last.

    Returns:
        Per variant: p50 latency = median of the per-round medians, p95 over every call,
        throughput over every batched call.
    """
    names = list(runs)
    feeds_of = {n: (feeds or {}).get(n, (singles, batch)) for n in names}
    per_round = max(1, repeats // rounds)
    batches_per_round = max(1, throughput_batches // rounds)
    for name in names:
        one, many = feeds_of[name]
        time_calls(lambda i: runs[name](one[i % len(one)]), warmup, 0)
        if many is not None:
            time_calls(lambda i: runs[name](many), min(warmup, 2), 0)
    lat: dict[str, list[np.ndarray]] = {n: [] for n in names}
    thr: dict[str, float] = dict.fromkeys(names, 0.0)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            one, many = feeds_of[name]
            # the variant timed before leaves its threads spinning and its weights in cache:
            # a pause, then untimed calls, so that this one pays for neither
            time.sleep(IDLE_S)
            time_calls(lambda i: runs[name](one[(r + i) % len(one)]), SETTLE, 0)
            lat[name].append(time_calls(
                lambda i: runs[name](one[(r * per_round + i) % len(one)]), 0, per_round))
            if many is not None:
                thr[name] += float(time_calls(lambda i: runs[name](many), 0,
                                              batches_per_round).sum())

    def throughput(name: str) -> float | None:
        many = feeds_of[name][1]
        if many is None:
            return None
        return float(len(next(iter(many.values()))) * batches_per_round * rounds / thr[name])

    return {
        name: Timing(
            latency_ms_p50=float(np.median([np.median(x) for x in lat[name]]) * 1e3),
            latency_ms_p95=float(np.percentile(np.concatenate(lat[name]), 95) * 1e3),
            throughput_per_s=throughput(name),
            round_ms=[float(np.median(x) * 1e3) for x in lat[name]],
        )
        for name in names
    }


def torch_runner(model: torch.nn.Module) -> Callable[[dict[str, np.ndarray]], object]:
    """Wrap a torch model as a ``run(feeds)`` callable under inference mode, on the model's
    device (autocast on a GPU; the call waits for the GPU to finish)."""
    from distillery.core.device import autocast, model_device

    model.eval()
    device = model_device(model)

    def run(feeds: dict[str, np.ndarray]) -> object:
        with torch.inference_mode(), autocast(device):
            logits = model(**{k: torch.from_numpy(v).to(device) for k, v in feeds.items()}).logits
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return logits

    return run


def ort_runner(session) -> Callable[[dict[str, np.ndarray]], object]:
    """Wrap an ONNX Runtime session as ``run(feeds)``; feeds it only the inputs it declares
    (an exporter may drop an input the graph does not use)."""
    names = {i.name for i in session.get_inputs()}

    def run(feeds: dict[str, np.ndarray]) -> object:
        return session.run(["logits"], {k: v for k, v in feeds.items() if k in names})

    return run


def torch_latency_ms(
    model: torch.nn.Module, feeds: list[dict[str, np.ndarray]], warmup: int, repeats: int
) -> float:
    """Median batch-1 latency of a torch model in ms."""
    run = torch_runner(model)
    return float(np.median(time_calls(lambda i: run(feeds[i % len(feeds)]), warmup, repeats)) * 1e3)


def available_providers(wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    """Which of ``wanted`` (``cpu``/``cuda``/``tensorrt``) really work here.

    A provider counts only if ONNX Runtime lists it *and* a session on a tiny model keeps it
    (onnxruntime-gpu lists CUDA even where no GPU or CUDA library exists).

    Returns:
        The usable short names and, for each skipped one, the reason.
    """
    import onnxruntime as ort

    listed = ort.get_available_providers()
    usable, skipped = [], {}
    for short in wanted:
        name = PROVIDERS[short]
        if name not in listed:
            skipped[short] = f"{name} not in this onnxruntime build ({', '.join(listed)})"
        elif short != "cpu" and not torch.cuda.is_available():
            skipped[short] = "no CUDA device visible (torch.cuda.is_available() is False)"
        elif short != "cpu" and not _provider_starts(name):
            skipped[short] = (f"{name} is listed but a session could not enable it "
                              "(CUDA / cuDNN / TensorRT libraries missing?)")
        else:
            usable.append(short)
    for short, why in skipped.items():
        logger.warning("skipping execution provider %s: %s", short, why)
    return usable, skipped


def _provider_starts(name: str) -> bool:
    """Whether a session on a one-node ONNX graph really runs on provider ``name``."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        fallback = [] if name == PROVIDERS["cpu"] else [PROVIDERS["cpu"]]
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=[name, *fallback])
    except Exception as err:  # a broken GPU install raises here
        logger.warning("%s failed to start: %s", name, err)
        return False
    return name in sess.get_providers()


def ort_session(path: str, provider: str, threads: int = 0, spinning: bool = True):
    """An ONNX Runtime session pinned to one provider (CPU as fallback for unsupported ops).

    ``threads``: intra-op threads (0 = ONNX Runtime's default, one per physical core); the
    inter-op pool is one thread, as torch runs these sequential graphs. ``spinning``: whether
    idle intra-op threads busy-wait for the next call (ONNX Runtime's default). Sessions timed
    side by side in one process turn it off: the threads of the session timed before keep
    spinning and slow the next one (the int8 teacher measured here 0.83 ms alone, 1.31 ms right
    after the fp32 teacher's calls), so each call is timed as a request reaching an idle
    server.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    providers = [PROVIDERS[provider]] + (["CPUExecutionProvider"] if provider != "cpu" else [])
    sess = ort.InferenceSession(path, opts, providers=providers)
    if PROVIDERS[provider] not in sess.get_providers():
        raise RuntimeError(f"{PROVIDERS[provider]} could not be enabled for {path}")
    return sess
