"""HPO samplers on a tabular benchmark: LoRA configurations scored once (the expensive part),
then every sampler replayed on the table many times, in seconds.

The objective a sampler sees is the score of the table configuration nearest to its proposal
in the unit cube of the search space (log scales included). Each repetition searches its own
random subset of the table, so deterministic samplers (SOO, BaMSOO) vary too; regret is
measured against that subset's best.
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
