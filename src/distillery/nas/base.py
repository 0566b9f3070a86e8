"""Architecture-search strategies as Optuna samplers, so NAS shares HPO's storage, resume,
workers and duplicate caching (:mod:`distillery.search.runner`).

A strategy proposes trial ``n``'s genome from the finished trials of the study alone, with a
random generator seeded by ``(seed, n)``: proposals are deterministic for a seed and one
worker, and a resumed study proposes what the uninterrupted one would have.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from distillery.modeling.genes import GENES
from distillery.nas.genome import Genome, GenomeSpace, random_genome


@dataclass
class Finished:
    """A finished trial as strategies see it."""

    number: int
    genome: Genome
    fitness: float


class GenomeSampler(BaseSampler):
    """Base class: subclasses implement :meth:`propose`."""

    def __init__(self, space: GenomeSpace, seed: int):
        self.space = space
        self.seed = seed

    def propose(self, n: int, finished: list[Finished], rng: random.Random) -> Genome:
        raise NotImplementedError

    def random(self, rng: random.Random) -> Genome:
        return random_genome(self.space.choices, rng)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self.space.distributions()

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, int]:
        if not search_space:
            return {}
        finished = [Finished(t.number, {g: t.params[g] for g in GENES}, float(t.value))
                    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if set(GENES) <= set(t.params)]
        finished.sort(key=lambda f: f.number)
        return self.propose(trial.number, finished, random.Random(f"{self.seed}-{trial.number}"))

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> int:
        rng = random.Random(f"{self.seed}-{trial.number}-{param_name}")
        return rng.choice(self.space.choices[param_name])
