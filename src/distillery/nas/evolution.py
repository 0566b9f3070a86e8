"""Generational evolution with elitism and mutation (the NAS study this project comes from).

Generation ``g`` holds trials ``g * P .. (g + 1) * P - 1``. Generation 0 is random; in each
later one the first ``elite`` slots copy the best genomes seen so far (their fitness is reused
from storage, not retrained) and the other slots hold mutated children of parents picked by
binary tournament from the previous generation.
"""

from __future__ import annotations

import random

from distillery.nas.base import Finished, GenomeSampler
from distillery.nas.genome import Genome, GenomeSpace, key, mutate


class EvolutionSampler(GenomeSampler):
    def __init__(self, space: GenomeSpace, seed: int, population: int, elite: int,
                 mutation_rate: float, **_):
        super().__init__(space, seed)
        self.population, self.elite, self.rate = population, elite, mutation_rate

    def propose(self, n: int, finished: list[Finished], rng: random.Random) -> Genome:
        gen, slot = divmod(n, self.population)
        earlier = [f for f in finished if f.number < gen * self.population]
        if gen == 0 or not earlier:
            return self.random(rng)
        if slot < self.elite:
            unique: dict[tuple[int, ...], Finished] = {}
            for f in earlier:  # first occurrence of each genome
                unique.setdefault(key(f.genome), f)
            ranked = sorted(unique.values(), key=lambda f: -f.fitness)  # stable: earliest first
            if slot < len(ranked):
                return dict(ranked[slot].genome)
        parents = [f for f in earlier if f.number >= (gen - 1) * self.population] or earlier
        a, b = rng.sample(parents, 2) if len(parents) > 1 else (parents[0], parents[0])
        parent = a if a.fitness >= b.fitness else b
        return mutate(parent.genome, self.space.choices, self.rate, rng)
