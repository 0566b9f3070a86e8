"""TPE: Optuna's tree-structured Parzen estimator, after ``n_initial`` random trials."""

from __future__ import annotations

import optuna

from distillery.search.space import Params, Space


def make(space: Space, seed: int, n_initial: int) -> tuple[optuna.samplers.BaseSampler,
                                                           list[Params]]:
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(n_initial, 1)), []
