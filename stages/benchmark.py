"""Stage ``benchmark``: accuracy, latency, throughput and size of every variant.

Variants: teacher and student in PyTorch fp32 (CPU), and every ONNX file (fp32 teacher,
student, pruned student; int8 student) on every usable ONNX Runtime execution provider. CPU
variants keep their plain names; other providers add ``@cuda`` / ``@tensorrt``.

Deps: ``--data``, ``--teacher``, ``--student``, ``--onnx``.
Params: ``teacher.max_length``, ``benchmark.*``.
Metrics: ``--metrics``: variant -> {accuracy, latency_ms_p50, latency_ms_p95,
throughput_per_s, size_mb, n_params, provider}, plus the skipped providers and why.
Plots: ``--table`` (CSV, one row per variant) and ``--png`` (Pareto: accuracy vs latency).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery import bench, evaluate, models, plots
from distillery.data import read_tsv
from distillery.io import Timer, stage_args, write_csv, write_json
from distillery.params import BenchmarkParams, TeacherParams, load_section

logger = logging.getLogger("stages.benchmark")

ONNX_VARIANTS = {
    "teacher-onnx-fp32": ("teacher.onnx", "teacher"),
    "student-onnx-fp32": ("student.onnx", "student"),
    "student-pruned-onnx-fp32": ("student_pruned.onnx", "student"),
    "student-onnx-int8": ("student_int8.onnx", "student"),
}


def inputs(sentences: list[str], tok, max_length: int, batch_size: int):
    """Batch-1 feeds (one per sentence) and one padded batch, as int64 numpy arrays."""
    def enc(s, pad):
        out = tok(s, padding=pad, truncation=True, max_length=max_length,
                  return_tensors="np", return_token_type_ids=False)
        return {k: v.astype(np.int64) for k, v in out.items()}
    return [enc([s], False) for s in sentences], enc(sentences[:batch_size], True)


def main(argv: list[str] | None = None) -> None:
    args = stage_args(
        __doc__, ["data", "teacher", "student", "onnx", "metrics", "table", "png"], argv
    )
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "benchmark", BenchmarkParams)
    torch.set_num_threads(p.threads or os.cpu_count() or 1)
    dev = read_tsv(Path(args.data) / "eval.tsv")
    tok = models.load_tokenizer(args.student)
    singles, batch = inputs(dev.sentences[: max(p.repeats, p.batch_size)], tok, tp.max_length,
                            p.batch_size)
    providers, skipped = bench.available_providers(p.providers)
    torch_models = {"teacher": args.teacher, "student": args.student}
    n_params, results = {}, {}
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
                run = lambda feeds, s=sess: s.run(["logits"], feeds)  # noqa: E731
                size, params = models.dir_size_mb(path), n_params[source]
            t = bench.measure(run, singles, batch, p.warmup, p.repeats, p.throughput_batches)
            results[variant] = {
                "accuracy": evaluate.accuracy(logits, dev.labels),
                "latency_ms_p50": round(t.latency_ms_p50, 4),
                "latency_ms_p95": round(t.latency_ms_p95, 4),
                "throughput_per_s": round(t.throughput_per_s, 2),
                "size_mb": round(size, 3), "n_params": params, "provider": provider,
            }
            logger.info("%s: %s", variant, results[variant])
    rows = [{"variant": k, **v} for k, v in results.items()]
    write_csv(args.table, rows)
    plots.pareto(rows, args.png)
    write_json(args.metrics, {**results, "skipped_providers": skipped,
                              "duration_s": round(timer.seconds, 2)})


if __name__ == "__main__":
    main()
