"""Stage ``benchmark``'s measurements: every variant (torch fp32 teacher and student, every
ONNX file of the ``export`` folder) scored on the eval split and timed on each usable execution
provider, the variants of one provider in interleaved rounds (:mod:`distillery.measure.bench`;
GPU sessions through :mod:`distillery.measure.accel`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery.config.benchmark import BenchmarkParams
from distillery.data.prepared import Split, encode
from distillery.export import onnx_export
from distillery.measure import accel, bench, evaluate
from distillery.modeling import loading

logger = logging.getLogger(__name__)


def inputs(split: Split, tok, max_length: int, n: int, batch_size: int):
    """Batch-1 feeds (one per example) and one padded batch, as int64 numpy arrays."""
    def enc(idx, pad):
        pairs = None if split.pairs is None else [split.pairs[i] for i in idx]
        return encode(tok, [split.texts[i] for i in idx], pairs, max_length, padding=pad,
                      return_tensors="np")
    n = min(n, len(split))
    return [enc([i], False) for i in range(n)], enc(list(range(min(batch_size, n))), True)


def onnx_files(folder: str | Path) -> list[tuple[str, Path, dict[str, str]]]:
    """``(variant, path, metadata)`` of every ONNX file in ``folder``, teachers first."""
    found = []
    for path in sorted(Path(folder).glob("*.onnx")):
        meta = onnx_export.read_metadata(path)
        variant = meta.get("variant") or f"{path.stem.replace('_', '-')}-onnx"
        found.append((variant, path, meta))
    return sorted(found, key=lambda f: (not f[0].startswith("teacher"), f[0]))


@dataclass
class Results:
    """What :func:`run` measured."""

    variants: dict[str, dict] = field(default_factory=dict)
    """variant -> scores, size, parameters, provider, latency and throughput."""
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    """variant -> eval logits."""
    threads: dict[str, int] = field(default_factory=dict)
    """intra-op threads actually used by torch and ONNX Runtime."""
    skipped_variants: dict[str, str] = field(default_factory=dict)


def _score(variant, base, path, meta, provider, dev, tok, t_tok, torch_models, device,
           threads, max_length, p, onnx_dir, res: Results):
    """Logits, runner and facts of one variant on one provider; None when it is skipped."""
    own = t_tok if variant.startswith("teacher") else tok
    if base is not None:
        model = loading.load_classifier(torch_models[base]).to(device)
        logits = evaluate.predict_logits(model, dev, own, max_length)
        runner = bench.torch_runner(model)
        size = sum(loading.dir_size_mb(f) for f in Path(torch_models[base]).glob("*.safetensors"))
        n_params = loading.count_params(model)
    elif meta.get("precision") == "fp16" and provider == "cpu":
        res.skipped_variants[variant] = "fp16 runs on GPU providers only"
        return None
    elif provider == "cpu":
        sess = bench.ort_session(str(path), provider, threads)
        res.threads.setdefault("onnxruntime", sess.get_session_options().intra_op_num_threads)
        # batch 1, as timed and as served: dynamic int8 quantises activations with one scale
        # per batch, so a padded batch of 64 scores differently
        logits = evaluate.onnx_logits(sess, dev, own, max_length, batch_size=1)
        runner = bench.ort_runner(sess)
    else:  # TensorRT with an explicit shape profile and engine cache; I/O binding
        sess = accel.session(path, provider, input_names=json.loads(meta["inputs"]),
                             max_batch=p.batch_size, max_length=max_length,
                             cache_dir=Path(onnx_dir).parent / "trt_cache")
        logits = evaluate.onnx_logits(sess, dev, own, max_length, p.batch_size)
        runner = accel.io_binding_runner(sess)
    if base is None:
        size, n_params = loading.dir_size_mb(path), int(meta.get("n_params", 0))
    facts = {**{k: round(v, 6) for k, v in evaluate.scores(logits, dev.labels).items()},
             "size_mb": round(size, 3), "n_params": n_params,
             "provider": f"torch-{device.type}" if base is not None else provider}
    return logits, runner, facts


def run(dev: Split, teacher: str, student: str, onnx_dir: str, providers: list[str],
        device: torch.device, threads: int, max_length: int, p: BenchmarkParams) -> Results:
    """Score and time every variant on every provider of ``providers`` (torch on ``device``
    with the CPU provider)."""
    tok = loading.load_tokenizer(student)
    t_tok = loading.load_tokenizer(teacher)  # a causal-LM teacher's wraps texts in its prompt
    n_feeds = max(p.repeats, p.batch_size)
    singles, batch = inputs(dev, tok, max_length, n_feeds, p.batch_size)
    teacher_feeds = inputs(dev, t_tok, max_length, n_feeds, p.batch_size)
    torch_models = {"teacher": teacher, "student": student}
    res = Results(threads={"torch": torch.get_num_threads()})
    for provider in providers:
        runs, facts = {}, {}
        jobs = [(f"{n}-torch-fp32", n, None, {}) for n in torch_models] \
            if provider == "cpu" else []
        jobs += [(v if provider == "cpu" else f"{v}@{provider}", None, path, meta)
                 for v, path, meta in onnx_files(onnx_dir)]
        for variant, base, path, meta in tqdm(jobs, desc=f"accuracy ({provider})"):
            done = _score(variant, base, path, meta, provider, dev, tok, t_tok, torch_models,
                          device, threads, max_length, p, onnx_dir, res)
            if done is not None:
                res.logits[variant], runs[variant], facts[variant] = done
        logger.info("timing %d variants on %s in %d interleaved rounds", len(runs), provider,
                    p.rounds)
        timings = bench.measure_interleaved(
            runs, singles, batch, p.warmup, p.repeats, p.throughput_batches, p.rounds,
            feeds={v: teacher_feeds for v in runs if v.startswith("teacher")})
        for variant, t in timings.items():
            res.variants[variant] = {
                **facts[variant],
                "latency_ms_p50": round(t.latency_ms_p50, 4),
                "latency_ms_p95": round(t.latency_ms_p95, 4),
                "throughput_per_s": round(t.throughput_per_s, 2),
            }
            logger.info("%s: %s", variant, res.variants[variant])
    return res


def confusion_matrix(logits, labels, n: int):
    """``(C, C)`` counts, rows actual, columns predicted."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), logits.argmax(-1)), 1)
    return m

