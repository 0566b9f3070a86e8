"""Bootstrap intervals: they hold the point estimate, narrow with more examples, match
scikit-learn's macro-F1 on the full sample, and a paired difference of identical models is 0."""

from __future__ import annotations

import numpy as np
import pytest

from distillery.measure import evaluate, intervals


def _logits(preds: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes)[preds]


@pytest.fixture
def sample():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 600)
    good = np.where(rng.random(600) < 0.8, labels, rng.integers(0, 4, 600))
    worse = np.where(rng.random(600) < 0.5, labels, rng.integers(0, 4, 600))
    return labels, _logits(good, 4), _logits(worse, 4)


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_interval_holds_the_score_and_has_the_binomial_width(sample, metric):
    labels, good, _ = sample
    lo, hi = intervals.score_interval(good, labels, metric)
    point = evaluate.score(good, labels, metric)
    assert lo < point < hi
    acc = evaluate.accuracy(good, labels)
    assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(acc * (1 - acc) / 600), rel=0.25)


def test_macro_f1_of_the_full_sample_is_sklearns():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, 300)
    preds = np.where(rng.random(300) < 0.6, labels, rng.integers(0, 4, 300))  # class 4 unpredicted
    full = np.arange(300)[None, :]
    ours = intervals.resampled_scores(labels, preds, full, 5, "macro_f1")[0]
    assert ours == pytest.approx(evaluate.macro_f1(_logits(preds, 5), labels))


def test_more_examples_narrow_the_interval():
    rng = np.random.default_rng(3)
    widths = []
    for n in (200, 3200):
        labels = rng.integers(0, 2, n)
        preds = np.where(rng.random(n) < 0.85, labels, 1 - labels)
        lo, hi = intervals.score_interval(_logits(preds, 2), labels, "accuracy")
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3  # 1 / sqrt(16) = 1/4


def test_paired_difference(sample):
    labels, good, worse = sample
    same = intervals.paired_difference(good, good, labels, "accuracy")
    assert same == {"diff": 0.0, "ci95": [0.0, 0.0], "distinguishable": False}
    d = intervals.paired_difference(good, worse, labels, "macro_f1")
    assert d["diff"] == pytest.approx(evaluate.macro_f1(good, labels)
                                      - evaluate.macro_f1(worse, labels), abs=1e-6)
    assert d["ci95"][0] < d["diff"] < d["ci95"][1] and d["distinguishable"]
    # one flipped prediction in 600 is not a finding
    flipped = good.copy()
    flipped[0] = np.roll(flipped[0], 1)
    assert not intervals.paired_difference(flipped, good, labels, "accuracy")["distinguishable"]
    with pytest.raises(ValueError, match="same examples"):
        intervals.paired_difference(good[:10], good, labels, "accuracy")
