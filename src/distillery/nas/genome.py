"""Genomes: a student architecture as one allowed value per gene of
:data:`distillery.modeling.genes.GENES`. Every genome produced here is valid
(``hidden_size % num_attention_heads == 0``): invalid samples are repaired, never rejected."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution

from distillery.core.io import UserError
from distillery.modeling.genes import GENES, repair_genome

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
        """Identity of the architecture trained for ``params`` (after repair)."""
        return key(self.repair(params))

    def repair(self, params: Mapping[str, int]) -> Genome:
        return repair_genome({g: int(params[g]) for g in GENES}, self.choices)

    def __hash__(self) -> int:
        return hash((tuple((g, tuple(self.choices[g])) for g in GENES),
                     self.choices.get("head_size")))


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


def select(history: list[Candidate], max_params: float | None = None,
           max_latency_ms: float | None = None, min_speedup: float | None = None) -> Candidate:
    """:func:`best` by score among the candidates within ``max_params`` (millions of
    parameters), ``max_latency_ms`` (measured end-to-end latency) and ``min_speedup``
    (measured speed-up over the reference); None = no limit.

    Raises:
        UserError: no candidate is within the limits (says how close the nearest came).
    """
    def within(c: Candidate) -> bool:
        return ((max_params is None or c.info["n_params"] <= max_params * 1e6)
                and (max_latency_ms is None or c.info["latency_ms"] <= max_latency_ms)
                and (min_speedup is None or c.info["speedup"] >= min_speedup))

    ok = [c for c in history if within(c)]
    if not ok:
        smallest = min(c.info["n_params"] for c in history) / 1e6
        fastest = min(c.info["latency_ms"] for c in history)
        top = max(c.info.get("speedup", float("nan")) for c in history)
        raise UserError(
            f"no candidate architecture within nas.max_params={max_params} (M), "
            f"nas.max_latency_ms={max_latency_ms} and nas.min_speedup={min_speedup}: the "
            f"smallest has {smallest:.2f}M parameters, the fastest takes {fastest:.3f} ms "
            f"({top:.2f}x); relax a limit or add smaller options to nas.search_space")
    return max(ok, key=lambda c: (c.info["score"], -c.info.get("n_params", 0)))


def pareto_front(history: list[Candidate], cost: str = "n_params") -> list[Candidate]:
    """Candidates no other beats on both score (higher) and ``cost`` (lower), by cost."""
    unique = {key(c.genome): c for c in history}.values()
    ranked = sorted(unique, key=lambda c: (c.info[cost], -c.info["score"]))
    front, best_score = [], -float("inf")
    for c in ranked:
        if c.info["score"] > best_score:
            front.append(c)
            best_score = c.info["score"]
    return front
