"""Hyperparameter search: GP Bayesian optimisation (Optuna ``GPSampler``, log-EI acquisition)
after a Latin-hypercube initial design, or the random-search baseline.

Optuna keeps the trial bookkeeping; the Latin hypercube (scipy ``qmc``) is enqueued as the
first ``n_initial`` trials so the GP starts from a space-filling design.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import optuna
from scipy.stats import qmc

from distillery.lora import LoraHyper

logger = logging.getLogger(__name__)


@dataclass
class Space:
    """Ranges of the searched hyperparameters (``lr`` on a log scale)."""

    lr: tuple[float, float]
    rank: tuple[int, int]
    alpha: tuple[int, int]
    dropout: tuple[float, float]

    def suggest(self, trial: optuna.Trial) -> LoraHyper:
        return LoraHyper(
            lr=trial.suggest_float("lr", *self.lr, log=True),
            rank=trial.suggest_int("rank", *self.rank),
            alpha=trial.suggest_int("alpha", *self.alpha),
            dropout=trial.suggest_float("dropout", *self.dropout),
        )

    def from_unit(self, u: list[float]) -> dict[str, float | int]:
        """Map a point of the unit hypercube to the space (same scales as ``suggest``)."""
        lo, hi = math.log(self.lr[0]), math.log(self.lr[1])
        return {
            "lr": float(math.exp(lo + u[0] * (hi - lo))),
            "rank": round(self.rank[0] + u[1] * (self.rank[1] - self.rank[0])),
            "alpha": round(self.alpha[0] + u[2] * (self.alpha[1] - self.alpha[0])),
            "dropout": float(self.dropout[0] + u[3] * (self.dropout[1] - self.dropout[0])),
        }


def latin_hypercube(space: Space, n: int, seed: int) -> list[dict[str, float | int]]:
    """``n`` Latin-hypercube points of ``space``."""
    if n == 0:
        return []
    unit = qmc.LatinHypercube(d=4, seed=seed).random(n)  # (n, 4)
    return [space.from_unit([float(x) for x in u]) for u in unit]


def run(
    objective: Callable[[LoraHyper], float],
    space: Space,
    sampler: Literal["gp", "random"],
    n_trials: int,
    n_initial: int,
    seed: int,
) -> optuna.Study:
    """Maximise ``objective`` over ``space`` for ``n_trials`` trials.

    Returns:
        The Optuna study (``study.trials`` holds every trial, ``best_trial`` the winner).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sampler == "gp":
        opt_sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_initial)
    else:
        opt_sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=opt_sampler)
    if sampler == "gp":
        for point in latin_hypercube(space, n_initial, seed):
            study.enqueue_trial(point)

    def wrapped(trial: optuna.Trial) -> float:
        hp = space.suggest(trial)
        score = objective(hp)
        logger.info("trial %d %s -> %.4f", trial.number, hp, score)
        return score

    study.optimize(wrapped, n_trials=n_trials, show_progress_bar=True)
    return study


def history(study: optuna.Study) -> list[dict[str, float | int]]:
    """One row per trial with its parameters, score and the best score so far."""
    rows, best = [], -math.inf
    for t in study.trials:
        best = max(best, t.value if t.value is not None else -math.inf)
        rows.append({"trial": t.number, **t.params, "score": t.value, "best_so_far": best})
    return rows
