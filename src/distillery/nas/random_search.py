"""Random search over architectures: the baseline."""

from __future__ import annotations

import random

from distillery.nas.base import Finished, GenomeSampler
from distillery.nas.genome import Genome, GenomeSpace


class RandomSampler(GenomeSampler):
    def __init__(self, space: GenomeSpace, seed: int, **_):
        super().__init__(space, seed)

    def propose(self, n: int, finished: list[Finished], rng: random.Random) -> Genome:
        return self.random(rng)
