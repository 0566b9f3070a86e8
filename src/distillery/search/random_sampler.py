"""Random search: the baseline every other sampler must beat (Optuna ``RandomSampler``)."""

from __future__ import annotations

import optuna

from distillery.search.space import Params, Space


def make(space: Space, seed: int, n_initial: int) -> tuple[optuna.samplers.BaseSampler,
                                                           list[Params]]:
    return optuna.samplers.RandomSampler(seed=seed), []
