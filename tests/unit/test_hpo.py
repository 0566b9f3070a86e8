"""Tests of ``distillery.hpo``: the Latin-hypercube design and the Optuna-driven search,
with a cheap synthetic objective in place of LoRA fine-tuning."""

from __future__ import annotations

import math

import optuna
import pytest

from distillery import hpo
from distillery.lora import LoraHyper

SPACE = hpo.Space(lr=(1e-4, 1e-2), rank=(2, 16), alpha=(4, 32), dropout=(0.0, 0.3))
KEYS = ("lr", "rank", "alpha", "dropout")


def objective(hp: LoraHyper) -> float:
    """Smooth, cheap, maximal at lr=1e-3, rank=8, alpha=16, dropout=0."""
    assert isinstance(hp.rank, int) and isinstance(hp.alpha, int)
    return (-(math.log10(hp.lr) + 3) ** 2 - (hp.rank - 8) ** 2 / 64
            - (hp.alpha - 16) ** 2 / 256 - hp.dropout)


def _inside(point) -> bool:
    return all(getattr(SPACE, k)[0] <= point[k] <= getattr(SPACE, k)[1] for k in KEYS)


# --------------------------------------------------------------------------- design


@pytest.mark.parametrize(
    ("u", "expected"),
    [
        ([0.0] * 4, {"lr": 1e-4, "rank": 2, "alpha": 4, "dropout": 0.0}),
        ([1.0] * 4, {"lr": 1e-2, "rank": 16, "alpha": 32, "dropout": 0.3}),
        ([0.5] * 4, {"lr": 1e-3, "rank": 9, "alpha": 18, "dropout": 0.15}),  # lr: log midpoint
    ],
    ids=["low", "high", "middle"],
)
def test_from_unit_corners(u, expected):
    point = SPACE.from_unit(u)
    assert point == pytest.approx(expected)
    assert isinstance(point["rank"], int) and isinstance(point["alpha"], int)


@pytest.mark.parametrize("n", [1, 4, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_latin_hypercube_points_are_inside_the_ranges(n, seed):
    points = hpo.latin_hypercube(SPACE, n, seed)
    assert len(points) == n
    assert all(set(p) == set(KEYS) and _inside(p) for p in points)
    assert all(isinstance(p["rank"], int) and isinstance(p["alpha"], int) for p in points)


@pytest.mark.parametrize("n", [2, 5, 8])
def test_latin_hypercube_is_stratified(monkeypatch, n):
    units: list[list[float]] = []
    original = hpo.Space.from_unit

    def recording(self, u):
        units.append(list(u))
        return original(self, u)

    monkeypatch.setattr(hpo.Space, "from_unit", recording)
    points = hpo.latin_hypercube(SPACE, n, seed=0)
    assert len(units) == n
    for dim in range(4):  # each of the n bins of every dimension is hit exactly once
        assert sorted(int(u[dim] * n) for u in units) == list(range(n)), dim
    lo, hi = math.log(SPACE.lr[0]), math.log(SPACE.lr[1])
    for u, p in zip(units, points, strict=True):  # continuous genes map back exactly
        assert (math.log(p["lr"]) - lo) / (hi - lo) == pytest.approx(u[0])
        assert p["dropout"] / 0.3 == pytest.approx(u[3])


def test_latin_hypercube_is_deterministic_for_a_seed():
    assert hpo.latin_hypercube(SPACE, 5, 3) == hpo.latin_hypercube(SPACE, 5, 3)
    assert hpo.latin_hypercube(SPACE, 5, 3) != hpo.latin_hypercube(SPACE, 5, 4)
    assert hpo.latin_hypercube(SPACE, 0, 3) == []


# --------------------------------------------------------------------------- search


@pytest.fixture(scope="module")
def gp_study() -> optuna.Study:
    return hpo.run(objective, SPACE, "gp", n_trials=6, n_initial=3, seed=0)


def test_gp_run_records_n_trials(gp_study):
    assert len(gp_study.trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in gp_study.trials)
    assert all(_inside(t.params) for t in gp_study.trials)
    assert gp_study.best_value == max(t.value for t in gp_study.trials)


def test_gp_run_starts_with_the_latin_hypercube(gp_study):
    design = hpo.latin_hypercube(SPACE, 3, seed=0)
    for trial, point in zip(gp_study.trials[:3], design, strict=True):
        assert trial.params == pytest.approx(point)
        assert trial.value == pytest.approx(objective(LoraHyper(**point)))


def test_random_run():
    study = hpo.run(objective, SPACE, "random", n_trials=5, n_initial=2, seed=0)
    assert len(study.trials) == 5
    assert all(_inside(t.params) for t in study.trials)
    again = hpo.run(objective, SPACE, "random", n_trials=5, n_initial=2, seed=0)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]
    # the random baseline does not use the Latin hypercube
    assert study.trials[0].params != pytest.approx(hpo.latin_hypercube(SPACE, 2, 0)[0])


def test_history_best_so_far_is_the_running_max(gp_study):
    rows = hpo.history(gp_study)
    assert [r["trial"] for r in rows] == list(range(6))
    assert all(set(r) == {"trial", *KEYS, "score", "best_so_far"} for r in rows)
    best = -math.inf
    for r in rows:
        best = max(best, r["score"])
        assert r["best_so_far"] == best
    assert [r["best_so_far"] for r in rows] == sorted(r["best_so_far"] for r in rows)


def test_history_skips_failed_trials_in_best_so_far():
    study = optuna.create_study(direction="maximize")
    for value in (0.5, None, 0.7):
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    assert [r["best_so_far"] for r in hpo.history(study)] == [0.5, 0.5, 0.7]
