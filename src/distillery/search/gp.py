"""GP-BO: Optuna's ``GPSampler`` (Gaussian process, log expected improvement) after a
Latin-hypercube initial design of ``n_initial`` points (enqueued as the first trials)."""

from __future__ import annotations

import optuna

from distillery.search.space import Params, Space


def make(space: Space, seed: int, n_initial: int) -> tuple[optuna.samplers.BaseSampler,
                                                           list[Params]]:
    sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_initial)
    return sampler, space.latin_hypercube(n_initial, seed)
