"""Genomes: a student architecture as one allowed value per gene of
:data:`distillery.models.GENES`. Every genome produced here is valid
(``hidden_size % num_attention_heads == 0``): invalid samples are repaired, never rejected."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution

from distillery.models import GENES, repair_genome

Genome = dict[str, int]


def key(genome: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(int(genome[g]) for g in GENES)


def random_genome(space: dict[str, list[int]], rng: random.Random) -> Genome:
    """Sample every gene uniformly, then repair."""
    return repair_genome({g: rng.choice(space[g]) for g in GENES}, space)


def mutate(genome: Genome, space: dict[str, list[int]], rate: float, rng: random.Random) -> Genome:
    """Resample each gene with probability ``rate``; at least one gene always changes
    when it has another allowed value, so a child differs from its parent."""
    child = dict(genome)
    for g in GENES:
        if rng.random() < rate:
            child[g] = rng.choice(space[g])
    child = repair_genome(child, space)
    if child != genome:
        return child
    # Force one change that survives repair (repair can undo a head-count change).
    options = [(g, v) for g in GENES for v in space[g] if v != genome[g]]
    rng.shuffle(options)
    for g, v in options:
        forced = repair_genome({**genome, g: v}, space)
        if forced != genome:
            return forced
    return child  # a space with a single valid genome


@dataclass(frozen=True)
class GenomeSpace:
    """The architecture space as the search runner sees it (names, distributions, key)."""

    choices: dict[str, list[int]]

    @property
    def names(self) -> list[str]:
        return list(GENES)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {g: CategoricalDistribution(tuple(self.choices[g])) for g in GENES}

    def key(self, params: Mapping[str, int]) -> tuple[int, ...]:
        return key(params)

    def __hash__(self) -> int:
        return hash(tuple((g, tuple(self.choices[g])) for g in GENES))


@dataclass
class Candidate:
    """One evaluated architecture (a finished trial)."""

    generation: int
    genome: Genome
    fitness: float
    info: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"generation": self.generation, **self.genome, "fitness": self.fitness, **self.info}


def best(history: list[Candidate]) -> Candidate:
    """Fittest candidate; ties go to the fewer parameters, then the earliest."""
    return max(history, key=lambda c: (c.fitness, -c.info.get("n_params", 0)))
