"""NSGA-II (K. Deb, A. Pratap, S. Agarwal, T. Meyarivan, "A fast and elitist multiobjective
genetic algorithm: NSGA-II", IEEE TEVC 2002), as Optuna's ``NSGAIISampler``: two objectives,
the proxy score (higher) and the student's parameters or measured batch-1 latency (lower).

Crossover and mutation act on the categorical genes; a child whose head count does not divide
its hidden size is repaired before training (the study keeps the proposal, the candidate the
repaired genome, and two proposals that repair to one architecture train it once).
"""

from __future__ import annotations

import optuna

from distillery.core.io import UserError
from distillery.nas.genome import GenomeSpace


def make(space: GenomeSpace, seed: int, population: int, mutation_rate: float, **_):
    if population < 2:
        raise UserError(f"nas.population={population}: NSGA-II needs a population of 2 or more")
    return optuna.samplers.NSGAIISampler(population_size=population, mutation_prob=mutation_rate,
                                         seed=seed)


COSTS = {"params": "n_params", "latency": "latency_ms"}
"""``nas.cost`` value -> the candidate info field NSGA-II minimises."""
