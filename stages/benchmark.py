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

Latency twice, side by side in the same rounds: the model alone (token ids in, logits out)
and end to end (text in, label out, tokenisation included: ``tokenizers`` for ONNX files as
the Space serves them, the transformers tokenizer for torch), on the CPU providers.

Timing is apples to apples: no variant is slowed by the threads of the one timed before it
(ONNX Runtime sessions without thread spinning; a short pause and untimed calls open each
variant's turn, see :func:`distillery.measure.bench.measure_interleaved`);
``benchmark.threads`` intra-op threads for torch and ONNX Runtime alike (the counts actually
used are recorded), and all variants of a provider are timed in ``benchmark.rounds``
interleaved rounds (round-robin, p50 = median of the round medians), so machine drift spreads
over every variant.

Deps: ``--data``, ``--teacher``, ``--student``, ``--onnx``, ``--baselines`` (each trained
baseline is a variant ``baseline-<kind>``, provider ``sklearn``, raw text in: its latency is
end to end).
Params: ``teacher.max_length``, ``task.metric``, ``benchmark.*``.
Metrics: ``--metrics``: variant -> {accuracy, macro_f1, latency_ms_p50, latency_ms_p95,
e2e_latency_ms_p50, e2e_latency_ms_p95, throughput_per_s, size_mb, n_params, provider}, the
threads used, the skipped providers and variants and why; ``--classes``: per-class precision /
recall / F1 / support of the teacher (torch fp32) and the shipped student (int8 ONNX), keyed by
label name; ``--intervals`` (not a metric): 95% bootstrap intervals of every variant's
accuracy and macro-F1 and the paired intervals of the differences the report's targets use.
Plots: ``--table`` (CSV, one row per variant), ``--confusion-dir`` (``teacher.csv``,
``student.csv``: actual/predicted label per eval example, DVC's ``confusion`` template) and
``--confusion-png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from distillery.config.base import load_section
from distillery.config.benchmark import BenchmarkParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.device import resolve_device
from distillery.core.io import Timer, run_main, stage_args, write_csv, write_json
from distillery.data.prepared import load_prepared
from distillery.measure import bench, benchmark, evaluate, plots

# Per-class metrics and confusion matrices: the teacher and the shipped student.
DETAILED = {"teacher": "teacher-torch-fp32", "student": "student-onnx-int8"}


def main(argv: list[str] | None = None) -> None:
    args = stage_args(
        __doc__, ["data", "teacher", "student", "onnx", "baselines", "metrics", "classes",
                  "intervals",
                  "confusion-dir", "table", "confusion-png"], argv
    )
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "benchmark", BenchmarkParams)
    metric = load_section(args.params, "task", TaskParams).metric
    threads = p.threads or os.cpu_count() or 1
    device = resolve_device(tp.device)
    torch.set_num_threads(threads)
    splits, names = load_prepared(args.data)
    dev = splits["eval"]
    providers, skipped = bench.available_providers(p.providers)
    with Timer() as timer:
        res = benchmark.run(dev, args.teacher, args.student, args.onnx, providers, device,
                            threads, tp.max_length, p, args.baselines)
    write_csv(args.table, [{"variant": k, **v} for k, v in res.variants.items()])
    matrices = {}
    for short, variant in DETAILED.items():
        conf = evaluate.confusion_rows(res.logits[variant], dev.labels, names)
        write_csv(Path(args.confusion_dir) / f"{short}.csv", conf)
        matrices[f"{variant} (eval)"] = benchmark.confusion_matrix(res.logits[variant],
                                                                   dev.labels, len(names))
    plots.confusion(matrices, names, args.confusion_png)
    write_json(args.classes, {short: evaluate.per_class(res.logits[v], dev.labels, names)
                              for short, v in DETAILED.items()})
    write_json(args.intervals, res.intervals(dev.labels, metric))
    write_json(args.metrics, {**res.variants, "metric": metric, "labels": ",".join(names),
                              "threads": res.threads, "rounds": p.rounds,
                              "device": str(device), "skipped_providers": skipped,
                              "skipped_variants": res.skipped_variants,
                              "duration_s": round(timer.seconds, 2)})


if __name__ == "__main__":
    run_main(main)
