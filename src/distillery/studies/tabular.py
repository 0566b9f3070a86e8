"""Searches on tabular benchmarks: configurations scored once (the expensive part), then
every sampler or strategy replayed on the table many times, in seconds.

* HPO: LoRA configurations; the objective a sampler sees is the score of the table
  configuration nearest to its proposal in the unit cube of the search space (log scales
  included). Each repetition searches its own random subset of the table, so deterministic
  samplers (SOO, BaMSOO) vary too; regret is measured against that subset's best.
* NAS: every architecture of ``nas.search_space``; a strategy sees what stage ``nas`` would
  (fitness with the speed budget; NSGA-II score and cost), and a trial is worth its score
  when within the budget and the worst within-budget score when not (a pick over budget is
  no better than the worst admissible one), so regret is measured against the best
  architecture within the budget.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from distillery.core.io import UserError
from distillery.search import Params, Space, make_sampler, runner

logger = logging.getLogger(__name__)


@dataclass
class Table:
    """Configurations of ``space`` and their scores."""

    space: Space
    configs: list[Params]
    scores: list[float]

    def __post_init__(self) -> None:
        self.units = np.stack([self.space.to_unit(c) for c in self.configs])  # (N, d)

    def subset(self, share: float, seed: int) -> Table:
        n = max(2, round(share * len(self.configs)))
        idx = sorted(random.Random(seed).sample(range(len(self.configs)), n))
        return Table(self.space, [self.configs[i] for i in idx], [self.scores[i] for i in idx])

    def nearest(self, params: Params) -> float:
        d = np.linalg.norm(self.units - self.space.to_unit(params)[None, :], axis=1)
        return self.scores[int(np.argmin(d))]

    @property
    def best(self) -> float:
        return max(self.scores)


def read_table(path: str, space: Space) -> Table:
    """The CSV written by the ``hpo_table`` study stage (one column per dimension + score)."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise UserError(f"{path} holds no configurations: rerun the hpo_table study stage")
    configs = [{d.name: int(float(r[d.name])) if d.integer else float(r[d.name])
                for d in space.dims} for r in rows]
    return Table(space, configs, [float(r["score"]) for r in rows])


def replay(table: Table, sampler: str, seed: int, budget: int, n_initial: int) -> list[float]:
    """Scores of one sampler run of ``budget`` trials on ``table``, in trial order."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opt, design = make_sampler(sampler, table.space, seed, n_initial)
    study = optuna.create_study(direction="maximize", sampler=opt)
    runner.prepare(study, design, journal=True)
    runner.optimize(study, table.space, table.nearest, budget, desc=None)
    return [t.value for t in runner.finished_trials(study)]


def every_genome(space: dict[str, Any]) -> list[dict[str, int]]:
    """Every distinct valid architecture of a ``nas.search_space`` (after repair), in the
    order of the product of its gene lists."""
    import itertools

    from distillery.nas.genome import GenomeSpace

    genomes = GenomeSpace(space)
    out: dict[tuple[int, ...], dict[str, int]] = {}
    for combo in itertools.product(*(space[g] for g in genomes.names)):
        g = genomes.repair(dict(zip(genomes.names, combo, strict=True)))
        out.setdefault(genomes.key(g), g)
    return list(out.values())


@dataclass
class NasTable:
    """Rows of stage ``nas_table`` (genes, ``score``, ``speedup``, ``latency_ms``,
    ``n_params``) and the pipeline's speed budget."""

    rows: list[dict[str, Any]]
    min_speedup: float | None

    def __post_init__(self) -> None:
        from distillery.nas.genome import key

        self.by_key = {key(r): r for r in self.rows}
        ok = [r["score"] for r in self.rows if self.within(r)]
        if not ok:
            raise UserError(f"no architecture of the table reaches nas.min_speedup="
                            f"{self.min_speedup}: nothing to search for")
        self.best, self.floor = max(ok), min(ok)

    def within(self, row: dict[str, Any]) -> bool:
        return self.min_speedup is None or row["speedup"] >= self.min_speedup

    def row(self, genome: dict[str, int]) -> dict[str, Any]:
        from distillery.nas.genome import key

        return self.by_key[key(genome)]

    def value(self, genome: dict[str, int]) -> float:
        """What a pick is worth: its score within the budget, the floor outside."""
        r = self.row(genome)
        return r["score"] if self.within(r) else self.floor

    def fitness(self, genome: dict[str, int]) -> tuple[float, dict[str, Any]]:
        """What stage ``nas`` computes for a candidate (:class:`distillery.nas.ProxyTask`,
        no penalties)."""
        r = self.row(genome)
        fit = r["score"] if self.within(r) else r["score"] - self.min_speedup / r["speedup"]
        return fit, {k: r[k] for k in ("score", "speedup", "latency_ms", "n_params")}


def read_nas_table(path: str, min_speedup: float | None) -> NasTable:
    """The CSV written by the ``nas_table`` study stage."""
    import csv

    from distillery.nas.genome import GENES

    with open(path, newline="") as f:
        rows = [{**{g: int(r[g]) for g in GENES},
                 **{k: float(r[k]) for k in ("score", "speedup", "latency_ms", "n_params")}}
                for r in csv.DictReader(f)]
    if not rows:
        raise UserError(f"{path} holds no architectures: rerun the nas_table study stage")
    return NasTable(rows, min_speedup)


def replay_nas(table: NasTable, strategy: str, seed: int, p: Any) -> list[dict[str, int]]:
    """Genomes of one ``strategy`` run at the budget of ``p`` (``nas.*``), in trial order
    (NSGA-II's cost: the measured latency)."""
    import dataclasses

    from distillery import nas

    history = nas.search(dataclasses.asdict(p.search_space), table.fitness, strategy,
                         p.population, p.generations, seed, cost="latency", elite=p.elite,
                         mutation_rate=p.mutation_rate, sample_size=p.sample_size)
    return [c.genome for c in history]


def best_so_far(values: Sequence[float]) -> np.ndarray:
    return np.maximum.accumulate(np.asarray(values, dtype=float))


def first_reaching(curve: np.ndarray, target: float) -> int | None:
    """1-based trial at which ``curve`` first reaches ``target`` (None: never)."""
    hits = np.flatnonzero(curve >= target - 1e-12)
    return int(hits[0]) + 1 if hits.size else None


def summarize(runs: dict[str, list[dict[str, Any]]], within: float = 0.01
              ) -> list[dict[str, Any]]:
    """One row per sampler from its runs (each ``{"values", "table_best", "random_best"}``).

    * ``final_regret``: median over runs of (table best - best found), in score points.
    * ``trials_to_random_best``: median over runs of the first trial whose best-so-far
      reaches random search's final best on the same table subset (runs that never reach it
      count as ``budget + 1``).
    * ``share_near_best``: share of all evaluations within ``within`` of the table's best.
    """
    rows = []
    for name, rs in runs.items():
        budget = len(rs[0]["values"])
        regret = [r["table_best"] - best_so_far(r["values"])[-1] for r in rs]
        reach = [first_reaching(best_so_far(r["values"]), r["random_best"]) or budget + 1
                 for r in rs]
        near = [v >= r["table_best"] - within for r in rs for v in r["values"]]
        rows.append({"sampler": name, "runs": len(rs), "budget": budget,
                     "final_regret": float(np.median(regret)),
                     "final_regret_mean": float(np.mean(regret)),
                     "trials_to_random_best": float(np.median(reach)),
                     "reached_random_best": sum(x <= budget for x in reach) / len(reach),
                     "share_near_best": float(np.mean(near))})
    return rows


def versus(runs: dict[str, list[dict[str, Any]]], name: str, reference: str = "random",
           resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean final regret of ``name`` minus ``reference``'s over runs paired by seed (run ``i``
    of each), with a 95% bootstrap interval over the runs (negative: ``name`` ends nearer the
    best)."""
    from distillery.measure.intervals import percentile_interval

    def final(r: dict[str, Any]) -> float:
        return float(r["table_best"] - best_so_far(r["values"])[-1])

    d = np.array([final(a) - final(b) for a, b in zip(runs[name], runs[reference], strict=True)])
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    lo, hi = percentile_interval(boot, 0.95)
    return {"diff": float(d.mean()), "ci95": [lo, hi]}


def curves(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Mean best-so-far regret per sampler and trial, with the 25-75% band over runs."""
    rows = []
    for name, rs in runs.items():
        regret = np.stack([r["table_best"] - best_so_far(r["values"]) for r in rs])  # (R, T)
        for t in range(regret.shape[1]):
            col = regret[:, t]
            rows.append({"sampler": name, "trial": t + 1, "regret_mean": float(col.mean()),
                         "regret_q25": float(np.quantile(col, 0.25)),
                         "regret_q75": float(np.quantile(col, 0.75))})
    return rows
