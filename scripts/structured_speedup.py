"""ONNX Runtime CPU batch-1 latency of a random BERT before vs after structured pruning.

A one-off measurement (not a pipeline stage): 2 layers x hidden 256 x 4 heads x FFN 1536,
vocabulary 30522, fp32 exports of the dense model and of the model pruned with
``keep_heads`` / ``keep_neurons`` (random importance scores: the shapes, not the choice, set
the speed). Sessions use one intra-op thread; rounds alternate the two models and the median
of per-round medians is reported, so drifting machine load hits both alike.

Usage: ``python scripts/structured_speedup.py [--keep-heads 0.5] [--keep-neurons 0.5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from transformers import BertConfig, BertForSequenceClassification

from distillery import models, onnx_export
from distillery.pruning import structured


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _round_ms(session: ort.InferenceSession, feeds: dict, calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        session.run(["logits"], feeds)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep-heads", type=float, default=0.5)
    ap.add_argument("--keep-neurons", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--seq", type=int, default=24)
    args = ap.parse_args()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=256, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=1536, num_labels=2)
    dense = BertForSequenceClassification(config).eval()
    pruned = BertForSequenceClassification(config).eval()
    pruned.load_state_dict(dense.state_dict())
    scores = structured.Scores([torch.rand(4) for _ in range(2)],
                               [torch.rand(1536) for _ in range(2)])
    spec = structured.prune(pruned, args.keep_heads, args.keep_neurons, scores)
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(1000, 30000, (1, args.seq), dtype=np.int64),
             "attention_mask": np.ones((1, args.seq), dtype=np.int64)}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for name, model in (("dense", dense), ("pruned", pruned)):
            path = Path(tmp) / f"{name}.onnx"
            onnx_export.export(model, path, opset=18)
            sessions[name] = _session(path)
            _round_ms(sessions[name], feeds, 20)  # warm-up
        rounds: dict[str, list[float]] = {"dense": [], "pruned": []}
        for _ in range(args.rounds):
            for name, session in sessions.items():
                rounds[name].append(_round_ms(session, feeds, args.calls))
    dense_ms, pruned_ms = (statistics.median(rounds[n]) for n in ("dense", "pruned"))
    print(json.dumps({
        "spec": spec, "seq": args.seq,
        "n_params_dense": models.count_params(dense),
        "n_params_pruned": models.count_params(pruned),
        "dense_ms_p50": round(dense_ms, 4), "pruned_ms_p50": round(pruned_ms, 4),
        "latency_ratio_pruned_over_dense": round(pruned_ms / dense_ms, 3),
        "speedup": round(dense_ms / pruned_ms, 3),
        "rounds_ms": {n: [round(v, 4) for v in r] for n, r in rounds.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
