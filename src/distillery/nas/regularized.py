"""Regularized (aging) evolution: E. Real, A. Aggarwal, Y. Huang, Q. V. Le, "Regularized
Evolution for Image Classifier Architecture Search", AAAI 2019.

The population is the ``P`` most recent finished trials (the oldest dies as each child is
born, however fit: no genome survives on one lucky proxy score). The first ``P`` trials are
random; then each child mutates the fittest of ``sample_size`` members drawn at random.
"""

from __future__ import annotations

import random

from distillery.nas.base import Finished, GenomeSampler
from distillery.nas.genome import Genome, GenomeSpace, mutate


class RegularizedSampler(GenomeSampler):
    def __init__(self, space: GenomeSpace, seed: int, population: int, sample_size: int,
                 mutation_rate: float, **_):
        super().__init__(space, seed)
        self.population, self.sample_size, self.rate = population, sample_size, mutation_rate

    def propose(self, n: int, finished: list[Finished], rng: random.Random) -> Genome:
        if n < self.population or not finished:
            return self.random(rng)
        alive = finished[-self.population:]
        sample = rng.sample(alive, min(self.sample_size, len(alive)))
        parent = max(sample, key=lambda f: f.fitness)
        return mutate(parent.genome, self.space.choices, self.rate, rng)
