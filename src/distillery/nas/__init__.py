"""Architecture search of the student: strategies behind a registry, run as Optuna samplers
through :mod:`distillery.search.runner` (trials in storage, resume after a kill, parallel
workers, a genome's fitness computed once).

============  =============================================================================
``evolution`` generational, elitism + mutation (binary tournament parents)
``regularized`` aging evolution (Real et al. 2019)
``random``    random architectures: the baseline
============  =============================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from distillery.models import GENES
from distillery.nas.evolution import EvolutionSampler
from distillery.nas.genome import Candidate, Genome, GenomeSpace, best, key, mutate, random_genome
from distillery.nas.proxy import ProxyTask
from distillery.nas.random_search import RandomSampler
from distillery.nas.regularized import RegularizedSampler

STRATEGIES = {
    "evolution": EvolutionSampler,
    "regularized": RegularizedSampler,
    "random": RandomSampler,
}


def make_strategy(name: str, choices: dict[str, list[int]], seed: int, **knobs: Any):
    """The strategy registered as ``name`` over ``choices``; ``knobs``: population, elite,
    mutation_rate, sample_size (each strategy takes what it uses)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown NAS strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name](GenomeSpace(choices), seed, **knobs)


def candidates(trials: list[FrozenTrial], population: int) -> list[Candidate]:
    """Finished trials as candidates (generation = trial number // population)."""
    return [Candidate(t.number // population, {g: int(t.params[g]) for g in GENES},
                      float(t.value), {k: v for k, v in t.user_attrs.items() if k != "cached"})
            for t in trials]


def search(
    space: dict[str, list[int]],
    fitness: Callable[[Genome], tuple[float, dict[str, Any]]],
    strategy: str,
    population: int,
    generations: int,
    seed: int,
    study: optuna.Study | None = None,
    desc: str | None = None,
    **knobs: Any,
) -> list[Candidate]:
    """Run ``population * generations`` trials (in memory unless ``study`` is given) and
    return every finished candidate in trial order."""
    from distillery.search import runner

    sampler = make_strategy(strategy, space, seed, population=population, **knobs)
    if study is None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=sampler)
    else:
        study.sampler = sampler
    runner.optimize(study, sampler.space, lambda p: fitness({g: int(p[g]) for g in GENES}),
                    population * generations, desc=desc)
    return candidates(runner.finished_trials(study), population)


@dataclass
class Worker:
    """One NAS worker for :func:`runner.run_workers`: loads the teacher and data, then runs
    proxy trials on the shared study until it is full. Picklable (params and paths only)."""

    teacher: Any  # TeacherParams
    nas: Any  # NasParams
    metric: str
    data: str
    storage: str
    study: str

    def __call__(self, worker: int) -> None:
        import dataclasses

        import torch

        from distillery import models
        from distillery.data import load_prepared
        from distillery.io import setup_logging
        from distillery.search import runner

        p, tp = self.nas, self.teacher
        if p.workers > 1:
            setup_logging()
            torch.set_num_threads(runner.worker_threads(p.workers))
        splits, names = load_prepared(self.data)
        task = ProxyTask(
            teacher=models.load_classifier(tp.model, names),
            tokenizer=models.load_tokenizer(tp.model), train=splits["train"],
            val=splits["val"], max_length=tp.max_length, steps=p.proxy_steps,
            batch_size=p.batch_size, lr=p.lr, init_from_teacher=p.init_from_teacher,
            params_penalty=p.params_penalty, latency_penalty=p.latency_penalty,
            latency_repeats=p.latency_repeats, metric=self.metric, seed=p.seed,
        )
        study = runner.load(self.storage, self.study)
        search(dataclasses.asdict(p.search_space), task, p.strategy, p.population,
               p.generations, p.seed + worker, study=study,
               desc="nas" + (f" worker {worker}" if p.workers > 1 else ""),
               elite=p.elite, mutation_rate=p.mutation_rate, sample_size=p.sample_size)


__all__ = ["STRATEGIES", "Candidate", "Genome", "GenomeSpace", "ProxyTask", "Worker", "best",
           "candidates", "key", "make_strategy", "mutate", "random_genome", "search"]
