"""Bootstrap intervals for the scores of one model and for the difference between two models
scored on the same examples (paired: both resampled with the same indices).

An eval split of 872 sentences gives an accuracy a 95% interval about ±2.5 points wide, so a
difference between two variants means something only when its paired interval excludes 0.
Resampling is vectorised (one ``(B, n)`` index matrix, per-class counts by ``bincount``), so
1,000 resamples of a few thousand examples take milliseconds for any number of classes.
"""

from __future__ import annotations

import numpy as np

from distillery.measure.evaluate import Metric

RESAMPLES = 1000
LEVEL = 0.95


def indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``(B, n)`` row indices drawn with replacement (the same for every model scored)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def resampled_scores(labels: np.ndarray, preds: np.ndarray, idx: np.ndarray, n_classes: int,
            metric: Metric) -> np.ndarray:
    """``metric`` on every resample: ``(B,)``. Macro-F1 averages all ``n_classes`` classes
    (an absent class counts 0), as :func:`distillery.measure.evaluate.macro_f1` does."""
    y, p = labels[idx], preds[idx]  # (B, n)
    if metric == "accuracy":
        return (y == p).mean(axis=1)
    b = idx.shape[0]
    offset = np.arange(b)[:, None] * n_classes  # (B, 1)
    hit = y == p
    tp = np.bincount((offset + y)[hit], minlength=b * n_classes).reshape(b, n_classes)
    true = np.bincount((offset + y).ravel(), minlength=b * n_classes).reshape(b, n_classes)
    pred = np.bincount((offset + p).ravel(), minlength=b * n_classes).reshape(b, n_classes)
    denom = true + pred
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)
    return f1.mean(axis=1)


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def score_interval(logits: np.ndarray, labels, metric: Metric, resamples: int = RESAMPLES,
                   seed: int = 0, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` for one model's ``(n, C)`` logits."""
    labels = np.asarray(labels)
    idx = indices(len(labels), resamples, seed)
    values = resampled_scores(labels, logits.argmax(-1), idx, logits.shape[-1], metric)
    return percentile_interval(values, level)


def paired_difference(logits_a: np.ndarray, logits_b: np.ndarray, labels, metric: Metric,
                      resamples: int = RESAMPLES, seed: int = 0,
                      level: float = LEVEL) -> dict[str, float | list[float] | bool]:
    """``metric(a) - metric(b)`` on the same examples, with its paired bootstrap interval.

    Returns:
        ``diff``, ``ci95`` ``[low, high]`` and ``distinguishable`` (the interval excludes 0).
    """
    labels = np.asarray(labels)
    if logits_a.shape != logits_b.shape or len(labels) != len(logits_a):
        raise ValueError(f"paired scores need the same examples: {logits_a.shape}, "
                         f"{logits_b.shape}, {len(labels)} labels")
    c = logits_a.shape[-1]
    idx = indices(len(labels), resamples, seed)
    full = np.arange(len(labels))[None, :]
    pa, pb = logits_a.argmax(-1), logits_b.argmax(-1)
    diff = float(resampled_scores(labels, pa, full, c, metric)[0]
                 - resampled_scores(labels, pb, full, c, metric)[0])
    lo, hi = percentile_interval(resampled_scores(labels, pa, idx, c, metric)
                                 - resampled_scores(labels, pb, idx, c, metric), level)
    return {"diff": round(diff, 6), "ci95": [round(lo, 6), round(hi, 6)],
            "distinguishable": bool(lo > 0 or hi < 0)}
