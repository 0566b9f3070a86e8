"""Score every benchmarked variant with lm-eval and compare with the pipeline's own accuracy.

lm-eval is the evaluator of record (issue 6): the ``distillery`` model adapter answers the
task's loglikelihood requests with each classifier's class log-probabilities, so lm-eval's
``acc`` must equal ``metrics/benchmark.json``'s accuracy of the same variant. Writes a Markdown
table and a JSON file: ``python scripts/lmeval_variants.py reports/lmeval_variants.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from distillery.config.base import load_section
from distillery.config.teacher import TeacherParams
from distillery.core.io import setup_logging, write_json
from distillery.lmeval.cli import build_spec
from distillery.lmeval.harness import score
from distillery.lmeval.task import write_task
from distillery.serve.demo import TORCH_VARIANTS, onnx_variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", help="Markdown table (a .json with the same stem is written beside)")
    ap.add_argument("--models", default="models")
    ap.add_argument("--data", default="data/prepared")
    ap.add_argument("--bench", default="metrics/benchmark.json")
    args = ap.parse_args()
    setup_logging()
    bench = json.loads(Path(args.bench).read_text())
    max_length = load_section("params.yaml", "teacher", TeacherParams).max_length
    files = onnx_variants(Path(args.models) / "onnx")
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="distillery-lmeval-") as tmp:
        spec = build_spec(args.data, "eval", "distillery_eval", None, None)
        task = write_task(tmp, spec)
        for variant, measured in bench.items():
            if not isinstance(measured, dict) or "accuracy" not in measured or "@" in variant:
                continue
            if variant.startswith("baseline-"):  # their own files and tokenisers
                skipped.append(variant)
                continue
            if variant in TORCH_VARIANTS:
                folder = Path(args.models) / TORCH_VARIANTS[variant]
                model_args = {"path": str(folder), "max_length": max_length}
            else:
                owner = "teacher" if variant.startswith("teacher") else "student"
                model_args = {"path": str(files[variant]),
                              "tokenizer": str(Path(args.models) / owner)}
            start = time.perf_counter()
            got = score(task, model_args)
            rows.append({"variant": variant, "lm_eval_acc": got["acc"],
                         "pipeline_acc": measured["accuracy"], "n": got["n"],
                         "diff": abs(got["acc"] - measured["accuracy"]),
                         "seconds": round(time.perf_counter() - start, 1)})
            print(rows[-1], flush=True)
    lines = ["| variant | lm-eval acc | pipeline acc (benchmark) | abs diff | s |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['variant']} | {r['lm_eval_acc']:.6f} | {r['pipeline_acc']:.6f} | "
              f"{r['diff']:.1e} | {r['seconds']} |" for r in rows]
    worst = max(r["diff"] for r in rows)
    lines += ["", f"{len(rows)} variants, {rows[0]['n']} eval examples; largest difference "
              f"{worst:.1e} (the benchmark rounds to 6 decimals)."]
    if skipped:
        lines += ["", f"Not scored: {', '.join(skipped)} (the baselines' own model files and "
                  "tokenisers are not what the `distillery` adapter serves)."]
    Path(args.out).write_text("\n".join(lines) + "\n")
    write_json(Path(args.out).with_suffix(".json"), rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
