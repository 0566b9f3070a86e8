"""Architecture search of the student: strategies behind a registry, run as Optuna samplers
through :mod:`distillery.search.runner` (trials in storage, resume after a kill, parallel
workers, a genome's fitness computed once).

============  =============================================================================
``evolution`` generational, elitism + mutation (binary tournament parents)
``regularized`` aging evolution (Real et al. 2019)
``nsga2``     multi-objective (score vs parameters or latency), Optuna's NSGA-II
``random``    random architectures: the baseline
============  =============================================================================

Single-objective strategies maximise the fitness of :class:`ProxyTask` (score minus the
size / latency penalties, and below every candidate within the speed budget when outside it);
NSGA-II keeps score and cost apart. The stage picks the best score within
``nas.min_speedup`` / ``nas.max_params`` / ``nas.max_latency_ms``. Speed is measured as the
pipeline ships a student: the int8 ONNX file end to end (:mod:`distillery.nas.latency`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from distillery.core.io import UserError
from distillery.core.registry import Registry
from distillery.nas import nsga2
from distillery.nas.evolution import EvolutionSampler
from distillery.nas.genome import (
    Candidate,
    Genome,
    GenomeSpace,
    best,
    key,
    mutate,
    pareto_front,
    random_genome,
    select,
)
from distillery.nas.proxy import ProxyTask
from distillery.nas.random_search import RandomSampler
from distillery.nas.regularized import RegularizedSampler

STRATEGIES: Registry[Any] = Registry("NAS strategy", {
    "evolution": EvolutionSampler,
    "regularized": RegularizedSampler,
    "nsga2": nsga2.make,
    "random": RandomSampler,
})


def make_strategy(name: str, choices: dict[str, list[int]], seed: int, **knobs: Any):
    """The strategy registered as ``name`` over ``choices``; ``knobs``: population, elite,
    mutation_rate, sample_size (each strategy takes what it uses)."""
    return STRATEGIES.lookup(name)(GenomeSpace(choices), seed, **knobs)


def directions(strategy: str) -> tuple[str, ...]:
    return ("maximize", "minimize") if strategy == "nsga2" else ("maximize",)


def candidates(trials: list[FrozenTrial], population: int,
               choices: dict[str, list[int]]) -> list[Candidate]:
    """Finished trials as candidates (generation = trial number // population; the genome
    as trained, i.e. repaired; fitness = the first objective)."""
    space = GenomeSpace(choices)
    return [Candidate(t.number // population, space.repair(t.params), float(t.values[0]),
                      {k: v for k, v in t.user_attrs.items() if k != "cached"})
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
    cost: str = "params",
    **knobs: Any,
) -> list[Candidate]:
    """Run ``population * generations`` trials (in memory unless ``study`` is given) and
    return every finished candidate in trial order. ``cost`` (``params`` | ``latency``) is
    NSGA-II's second objective."""
    from distillery.search import runner

    genomes = GenomeSpace(space)
    sampler = make_strategy(strategy, space, seed, population=population, **knobs)
    if study is None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(directions=list(directions(strategy)), sampler=sampler)
    else:
        study.sampler = sampler

    def objective(params: dict[str, Any]) -> tuple[float | list[float], dict[str, Any]]:
        fit, info = fitness(genomes.repair(params))
        if strategy == "nsga2":
            return [info["score"], info[nsga2.COSTS[cost]]], info
        return fit, info

    runner.optimize(study, genomes, objective, population * generations, desc=desc)
    return candidates(runner.finished_trials(study), population, space)


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
    teacher_dir: str
    """Folder of the fine-tuned teacher (the base of candidates unless ``base`` is set)."""
    logits_dir: str | None = None
    """The teacher's logits (stage ``label``): the KD proxy's targets."""
    kd: tuple[float, float] = (0.5, 2.0)
    """(alpha, temperature) of the KD proxy, the same as the final distillation."""
    base: str | None = None
    """The model candidates are built from (family, tokenizer, weights where shapes allow;
    :func:`distillery.modeling.loading.student_base`); None: the teacher."""
    init: bool = True
    """False: ``distill.student_init: random`` (no candidate copies weights)."""
    recipe: str = "fused_dynamic"
    """``export.int8_recipe``: how candidates and the reference are quantised for timing."""
    opset: int = 18
    """``export.opset``."""
    threads: int = 0
    """``benchmark.threads``: intra-op threads of the timed sessions."""

    def __call__(self, worker: int) -> None:
        import dataclasses

        import torch

        from distillery.core.device import resolve_device
        from distillery.core.io import setup_logging
        from distillery.data.prepared import load_prepared
        from distillery.distill import teacher_logits
        from distillery.modeling import loading
        from distillery.nas.latency import ExportLatency
        from distillery.search import runner

        p, tp = self.nas, self.teacher
        if p.workers > 1:
            setup_logging()
            torch.set_num_threads(runner.worker_threads(p.workers))
        splits, names = load_prepared(self.data)
        device = resolve_device(tp.device)
        base_spec = self.base or self.teacher_dir
        base = loading.load_classifier(base_spec, names)
        tok = loading.load_tokenizer(base_spec)
        logits = None
        if p.proxy == "kd":
            if self.logits_dir is None:
                raise UserError("nas.proxy: kd needs the teacher's logits (logits_dir)")
            logits = teacher_logits.load(self.logits_dir, "train", splits["train"])
        timed = p.min_speedup is not None or p.max_latency_ms is not None \
            or p.latency_penalty > 0 or (p.strategy == "nsga2" and p.cost == "latency")
        latency = ExportLatency(
            reference=base, tokenizer=tok, tokenizer_dir=str(loading.resolve_model_path(base_spec)),
            texts=splits["eval"].subset(range(min(16, len(splits["eval"])))),
            max_length=tp.max_length, recipe=self.recipe, opset=self.opset,
            threads=self.threads, repeats=p.latency_repeats) if timed else None
        task = ProxyTask(
            teacher=base, tokenizer=tok, train=splits["train"],
            kd_logits=logits, kd_alpha=self.kd[0], kd_temperature=self.kd[1],
            val=splits["val"], max_length=tp.max_length, steps=p.proxy_steps,
            batch_size=p.batch_size, lr=p.lr, init_from_teacher=p.init_from_teacher and self.init,
            params_penalty=p.params_penalty, latency_penalty=p.latency_penalty,
            latency=latency, min_speedup=p.min_speedup, metric=self.metric, seed=p.seed,
            device=str(device),
        )
        study = runner.load(self.storage, self.study, directions(p.strategy))
        search(dataclasses.asdict(p.search_space), task, p.strategy, p.population,
               p.generations, p.seed + worker, study=study,
               desc="nas" + (f" worker {worker}" if p.workers > 1 else ""), cost=p.cost,
               elite=p.elite, mutation_rate=p.mutation_rate, sample_size=p.sample_size)


__all__ = ["STRATEGIES", "Candidate", "Genome", "GenomeSpace", "ProxyTask", "Worker", "best",
           "candidates", "directions", "key", "make_strategy", "mutate", "pareto_front",
           "random_genome", "search", "select"]
