"""Tests of ``distillery.hpo``: the LoRA search space, trial history and bound diagnostics,
the data fingerprint that names a study. (Samplers and the runner: ``test_search.py``.)"""

from __future__ import annotations

import math

import optuna
import pytest

from distillery import hpo
from distillery.io import fingerprint
from distillery.params import HpoParams

SPACE = hpo.search_space(HpoParams())


def test_lora_space_scales():
    assert SPACE.names == ["lr", "rank", "alpha", "dropout", "weight_decay"]
    middle = SPACE.from_unit([0.5] * 5)
    assert middle["lr"] == pytest.approx(math.sqrt(5e-5 * 1e-2))  # log midpoint
    assert middle["rank"] == round(math.sqrt(2 * 64)) and isinstance(middle["rank"], int)
    assert middle["alpha"] == 16 and isinstance(middle["alpha"], int)
    assert middle["dropout"] == pytest.approx(0.15)
    assert middle["weight_decay"] == pytest.approx(1e-3)


def test_hyper_converts_types():
    hp = hpo.hyper({"lr": 1e-3, "rank": 8.0, "alpha": 16, "dropout": 0.1, "weight_decay": 0.01})
    assert isinstance(hp.rank, int) and hp.weight_decay == 0.01


def _study(values, cached=()):
    study = optuna.create_study(direction="maximize")
    for i, v in enumerate(values):
        trial = study.ask(SPACE.distributions())
        if i in cached:
            trial.set_user_attr("cached", 0)
        study.tell(trial, v)
    return study


def test_history_best_so_far_and_cached():
    rows = hpo.history(_study([0.5, 0.7, 0.6], cached=(2,)).trials, SPACE)
    assert [r["best_so_far"] for r in rows] == [0.5, 0.7, 0.7]
    assert [r["cached"] for r in rows] == [0, 0, 1]
    assert set(rows[0]) == {"trial", *SPACE.names, "score", "best_so_far", "cached"}


def test_on_bounds_counts_trials_at_either_end():
    rows = [SPACE.from_unit([0.0, 0.5, 1.0, 0.5, 0.5]), SPACE.from_unit([0.5, 0.5, 1.0, 0.5, 1])]
    share = hpo.on_bounds(rows, SPACE)
    assert share == {"lr": 0.5, "rank": 0.0, "alpha": 1.0, "dropout": 0.0, "weight_decay": 0.5}


def test_fingerprint_follows_content(tmp_path):
    (tmp_path / "a.jsonl").write_text("x")
    first = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == first
    (tmp_path / "a.jsonl").write_text("y")
    assert fingerprint(tmp_path) != first
