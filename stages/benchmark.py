"""Stage ``benchmark``: accuracy, latency, throughput and size of every variant.

Variants: teacher and student in PyTorch fp32 (CPU), and every ONNX file (fp32 teacher,
student, pruned student; int8 student) on every usable ONNX Runtime execution provider. CPU
variants keep their plain names; other providers add ``@cuda`` / ``@tensorrt``.

Deps: ``--data``, ``--teacher``, ``--student``, ``--onnx``.
Params: ``teacher.max_length``, ``task.metric`` (the Pareto plot's score), ``benchmark.*``.
Metrics: ``--metrics``: variant -> {accuracy, macro_f1, latency_ms_p50, latency_ms_p95,
throughput_per_s, size_mb, n_params, provider}, plus the skipped providers and why;
``--classes``: per-class precision / recall / F1 / support of the teacher (torch fp32) and the
shipped student (int8 ONNX), keyed by label name.
Plots: ``--table`` (CSV, one row per variant), ``--png`` (Pareto: score vs latency),
``--confusion-dir`` (``teacher.csv``, ``student.csv``: actual/predicted label per eval example,
DVC's ``confusion`` template) and ``--confusion-png``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery import bench, evaluate, models, plots
from distillery.data import Split, encode, load_prepared
from distillery.io import Timer, run_main, stage_args, write_csv, write_json
from distillery.params import BenchmarkParams, TaskParams, TeacherParams, load_section

logger = logging.getLogger("stages.benchmark")

ONNX_VARIANTS = {
    "teacher-onnx-fp32": ("teacher.onnx", "teacher"),
    "student-onnx-fp32": ("student.onnx", "student"),
    "student-pruned-onnx-fp32": ("student_pruned.onnx", "student"),
    "student-onnx-int8": ("student_int8.onnx", "student"),
}
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


def main(argv: list[str] | None = None) -> None:
    args = stage_args(
        __doc__, ["data", "teacher", "student", "onnx", "metrics", "classes", "confusion-dir",
                  "table", "png", "confusion-png"], argv
    )
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "benchmark", BenchmarkParams)
    metric = load_section(args.params, "task", TaskParams).metric
    torch.set_num_threads(p.threads or os.cpu_count() or 1)
    splits, names = load_prepared(args.data)
    dev = splits["eval"]
    tok = models.load_tokenizer(args.student)
    singles, batch = inputs(dev, tok, tp.max_length, max(p.repeats, p.batch_size), p.batch_size)
    providers, skipped = bench.available_providers(p.providers)
    torch_models = {"teacher": args.teacher, "student": args.student}
    n_params, results, logits_of = {}, {}, {}
    with Timer() as timer:
        jobs = [(f"{n}-torch-fp32", n, "torch-cpu") for n in torch_models]
        jobs += [(v if pr == "cpu" else f"{v}@{pr}", v, pr) for pr in providers
                 for v in ONNX_VARIANTS]
        for variant, base, provider in tqdm(jobs, desc="benchmark"):
            if provider == "torch-cpu":
                model = models.load_classifier(torch_models[base])
                n_params[base] = models.count_params(model)
                logits = evaluate.predict_logits(model, dev, tok, tp.max_length)
                run = bench.torch_runner(model)
                size = sum(models.dir_size_mb(f)
                           for f in Path(torch_models[base]).glob("*.safetensors"))
                params = n_params[base]
            else:
                file, source = ONNX_VARIANTS[base]
                path = str(Path(args.onnx) / file)
                sess = bench.ort_session(path, provider, p.threads)
                logits = evaluate.onnx_logits(sess, dev, tok, tp.max_length)
                run = bench.ort_runner(sess)
                size, params = models.dir_size_mb(path), n_params[source]
            t = bench.measure(run, singles, batch, p.warmup, p.repeats, p.throughput_batches)
            logits_of[variant] = logits
            results[variant] = {
                **{k: round(v, 6) for k, v in evaluate.scores(logits, dev.labels).items()},
                "latency_ms_p50": round(t.latency_ms_p50, 4),
                "latency_ms_p95": round(t.latency_ms_p95, 4),
                "throughput_per_s": round(t.throughput_per_s, 2),
                "size_mb": round(size, 3), "n_params": params, "provider": provider,
            }
            logger.info("%s: %s", variant, results[variant])
    rows = [{"variant": k, **v} for k, v in results.items()]
    write_csv(args.table, rows)
    plots.pareto(rows, args.png, metric)
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
                              "skipped_providers": skipped,
                              "duration_s": round(timer.seconds, 2)})


def confusion_matrix(logits, labels, n: int):
    """``(C, C)`` counts, rows actual, columns predicted."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), logits.argmax(-1)), 1)
    return m


if __name__ == "__main__":
    run_main(main)
