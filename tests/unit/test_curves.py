"""Tests of ``distillery.measure.curves``: DVCLive training curves written by the training loop."""

from __future__ import annotations

import csv

from distillery.measure import curves
from distillery.modeling import training
from distillery.modeling.training import TrainConfig
from tests.conftest import make_sentences


def _tsv(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_curve_logs_windowed_loss_and_validation_score(tmp_path, tiny_model, tiny_tokenizer):
    train, val = make_sentences(16, 0), make_sentences(8, 1)
    cfg = TrainConfig(lr=1e-3, batch_size=4, max_length=16, steps=7)
    with curves.Curve(tmp_path / "c", val, tiny_tokenizer, 16, "accuracy", total_steps=7,
                      n_evals=3, log_every=2) as curve:
        losses = training.train(tiny_model, train, tiny_tokenizer, cfg, desc=None, on_step=curve)
    loss = _tsv(tmp_path / "c/plots/metrics/train/loss.tsv")
    assert [int(r["step"]) for r in loss] == [2, 4, 6, 7]  # every 2 steps and the last one
    assert float(loss[0]["loss"]) == sum(losses[:2]) / 2
    score = _tsv(tmp_path / "c/plots/metrics/val/score.tsv")
    assert [int(r["step"]) for r in score] == [3, 6, 7]
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in score)
    assert curve.last_score == float(score[-1]["score"])


def test_a_rerun_replaces_the_previous_curve(tmp_path, tiny_model, tiny_tokenizer):
    for steps in (4, 2):
        with curves.Curve(tmp_path / "c", None, tiny_tokenizer, 16, "accuracy",
                          total_steps=steps, log_every=1) as curve:
            training.train(tiny_model, make_sentences(8, 0), tiny_tokenizer,
                           TrainConfig(lr=1e-3, batch_size=4, max_length=16, steps=steps),
                           desc=None, on_step=curve)
    assert len(_tsv(tmp_path / "c/plots/metrics/train/loss.tsv")) == 2
