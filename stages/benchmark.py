"""Stage ``benchmark``: accuracy, latency, throughput and size of every variant.

Variants: teacher and student in PyTorch fp32 (CPU), and every ONNX file of ``--onnx`` (named
by the ``variant`` key of its metadata: fp32 teacher and students, the int8 recipes, the
structured-pruned and vocabulary-pruned students) on every usable ONNX Runtime execution
provider. CPU variants keep their plain names; other providers add ``@cuda`` / ``@tensorrt``.
fp16 files run on GPU providers only. GPU sessions: TensorRT gets one explicit shape profile
(batch 1..``benchmark.batch_size``, tokens 1..``teacher.max_length``) and an engine cache in
``models/trt_cache`` so that no engine is built inside the timed loop; CUDA and TensorRT run
through I/O binding (:mod:`distillery.measure.accel`).

Accuracy of the CPU ONNX variants is scored one text at a time, as they are timed and served:
dynamic int8 computes activation scales per call, so a padded batch of 64 texts scored the
default run's recommended file 0.8177 where batch 1 gives 0.8119. Torch fp32 (batch-invariant)
and GPU providers score in batches.

Timing is apples to apples: ``benchmark.threads`` intra-op threads for torch and ONNX Runtime
alike (the counts actually used are recorded), and all variants of a provider are timed in
``benchmark.rounds`` interleaved rounds (round-robin, p50 = median of the round medians), so
machine drift spreads over every variant.

Deps: ``--data``, ``--teacher``, ``--student``, ``--onnx``.
Params: ``teacher.max_length``, ``task.metric``, ``benchmark.*``.
Metrics: ``--metrics``: variant -> {accuracy, macro_f1, latency_ms_p50, latency_ms_p95,
throughput_per_s, size_mb, n_params, provider}, the threads used, the skipped providers and
variants and why; ``--classes``: per-class precision / recall / F1 / support of the teacher
(torch fp32) and the shipped student (int8 ONNX), keyed by label name.
Plots: ``--table`` (CSV, one row per variant), ``--confusion-dir`` (``teacher.csv``,
``student.csv``: actual/predicted label per eval example, DVC's ``confusion`` template) and
``--confusion-png``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery.config.base import load_section
from distillery.config.benchmark import BenchmarkParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.device import resolve_device
from distillery.core.io import Timer, run_main, stage_args, write_csv, write_json
from distillery.data.prepared import Split, encode, load_prepared
from distillery.export import onnx_export
from distillery.measure import accel, bench, evaluate, plots
from distillery.modeling import loading

logger = logging.getLogger("stages.benchmark")

# Per-class metrics and confusion matrices: the teacher and the shipped student.
DETAILED = {"teacher": "teacher-torch-fp32", "student": "student-onnx-int8"}


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


def main(argv: list[str] | None = None) -> None:
    args = stage_args(
        __doc__, ["data", "teacher", "student", "onnx", "metrics", "classes", "confusion-dir",
                  "table", "confusion-png"], argv
    )
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "benchmark", BenchmarkParams)
    metric = load_section(args.params, "task", TaskParams).metric
    threads = p.threads or os.cpu_count() or 1
    device = resolve_device(tp.device)
    torch.set_num_threads(threads)
    splits, names = load_prepared(args.data)
    dev = splits["eval"]
    tok = loading.load_tokenizer(args.student)
    t_tok = loading.load_tokenizer(args.teacher)  # a causal-LM teacher's wraps texts in its prompt
    n_feeds = max(p.repeats, p.batch_size)
    singles, batch = inputs(dev, tok, tp.max_length, n_feeds, p.batch_size)
    teacher_feeds = inputs(dev, t_tok, tp.max_length, n_feeds, p.batch_size)
    providers, skipped = bench.available_providers(p.providers)
    torch_models = {"teacher": args.teacher, "student": args.student}
    results, logits_of, skipped_variants = {}, {}, {}
    used = {"torch": torch.get_num_threads()}
    with Timer() as timer:
        for provider in providers:
            runs, facts = {}, {}
            jobs = [(f"{n}-torch-fp32", n, None, {}) for n in torch_models] \
                if provider == "cpu" else []
            jobs += [(v if provider == "cpu" else f"{v}@{provider}", None, path, meta)
                     for v, path, meta in onnx_files(args.onnx)]
            for variant, base, path, meta in tqdm(jobs, desc=f"accuracy ({provider})"):
                own = t_tok if variant.startswith("teacher") else tok
                if base is not None:
                    model = loading.load_classifier(torch_models[base]).to(device)
                    logits = evaluate.predict_logits(model, dev, own, tp.max_length)
                    runs[variant] = bench.torch_runner(model)
                    size = sum(loading.dir_size_mb(f)
                               for f in Path(torch_models[base]).glob("*.safetensors"))
                    n_params = loading.count_params(model)
                elif meta.get("precision") == "fp16" and provider == "cpu":
                    skipped_variants[variant] = "fp16 runs on GPU providers only"
                    continue
                elif provider == "cpu":
                    sess = bench.ort_session(str(path), provider, threads)
                    used.setdefault("onnxruntime",
                                    sess.get_session_options().intra_op_num_threads)
                    # batch 1, as timed and as served: dynamic int8 quantises activations
                    # with one scale per batch, so a padded batch of 64 scores differently
                    logits = evaluate.onnx_logits(sess, dev, own, tp.max_length, batch_size=1)
                    runs[variant] = bench.ort_runner(sess)
                else:  # TensorRT with an explicit shape profile and engine cache; I/O binding
                    sess = accel.session(path, provider, input_names=json.loads(meta["inputs"]),
                                         max_batch=p.batch_size, max_length=tp.max_length,
                                         cache_dir=Path(args.onnx).parent / "trt_cache")
                    logits = evaluate.onnx_logits(sess, dev, own, tp.max_length, p.batch_size)
                    runs[variant] = accel.io_binding_runner(sess)
                if base is None:
                    size, n_params = loading.dir_size_mb(path), int(meta.get("n_params", 0))
                logits_of[variant] = logits
                facts[variant] = {
                    **{k: round(v, 6) for k, v in evaluate.scores(logits, dev.labels).items()},
                    "size_mb": round(size, 3), "n_params": n_params,
                    "provider": f"torch-{device.type}" if base is not None else provider,
                }
            logger.info("timing %d variants on %s in %d interleaved rounds", len(runs), provider,
                        p.rounds)
            timings = bench.measure_interleaved(
                runs, singles, batch, p.warmup, p.repeats, p.throughput_batches, p.rounds,
                feeds={v: teacher_feeds for v in runs if v.startswith("teacher")})
            for variant, t in timings.items():
                results[variant] = {
                    **facts[variant],
                    "latency_ms_p50": round(t.latency_ms_p50, 4),
                    "latency_ms_p95": round(t.latency_ms_p95, 4),
                    "throughput_per_s": round(t.throughput_per_s, 2),
                }
                logger.info("%s: %s", variant, results[variant])
    rows = [{"variant": k, **v} for k, v in results.items()]
    write_csv(args.table, rows)
    matrices = {}
    for short, variant in DETAILED.items():
        conf = evaluate.confusion_rows(logits_of[variant], dev.labels, names)
        write_csv(Path(args.confusion_dir) / f"{short}.csv", conf)
        matrices[f"{variant} (eval)"] = confusion_matrix(logits_of[variant], dev.labels,
                                                         len(names))
    plots.confusion(matrices, names, args.confusion_png)
    write_json(args.classes, {short: evaluate.per_class(logits_of[v], dev.labels, names)
                              for short, v in DETAILED.items()})
    write_json(args.metrics, {**results, "metric": metric, "labels": ",".join(names),
                              "threads": used, "rounds": p.rounds,
                              "device": str(device), "skipped_providers": skipped,
                              "skipped_variants": skipped_variants,
                              "duration_s": round(timer.seconds, 2)})


def confusion_matrix(logits, labels, n: int):
    """``(C, C)`` counts, rows actual, columns predicted."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), logits.argmax(-1)), 1)
    return m


if __name__ == "__main__":
    run_main(main)
