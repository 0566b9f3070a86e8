"""Hyperparameter search of LoRA fine-tuning: the search space, the trial objective and the
trial history, on top of :mod:`distillery.search` (any registered sampler, trials on Optuna
storage, resumable, parallel workers).

Searched, as in the HPO study this project comes from: learning rate and weight decay (log
scale), LoRA rank and alpha (integers, log scale) and LoRA dropout (linear).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial

from distillery.lora import LoraHyper
from distillery.search import Dim, Space

logger = logging.getLogger(__name__)


def lora_space(lr: list[float], rank: list[int], alpha: list[int], dropout: list[float],
               weight_decay: list[float]) -> Space:
    """The LoRA search space from ``[low, high]`` ranges."""
    return Space((
        Dim("lr", lr[0], lr[1], log=True),
        Dim("rank", rank[0], rank[1], log=True, integer=True),
        Dim("alpha", alpha[0], alpha[1], log=True, integer=True),
        Dim("dropout", dropout[0], dropout[1]),
        Dim("weight_decay", weight_decay[0], weight_decay[1], log=True),
    ))


def hyper(params: dict[str, Any]) -> LoraHyper:
    return LoraHyper(lr=float(params["lr"]), rank=int(params["rank"]),
                     alpha=int(params["alpha"]), dropout=float(params["dropout"]),
                     weight_decay=float(params["weight_decay"]))


def history(trials: list[FrozenTrial], space: Space) -> list[dict[str, Any]]:
    """One row per finished trial: its parameters, score, best score so far and whether it
    reused an identical earlier trial."""
    rows, best = [], -math.inf
    for t in trials:
        best = max(best, t.value)
        rows.append({"trial": t.number, **{n: t.params[n] for n in space.names},
                     "score": t.value, "best_so_far": best,
                     "cached": int("cached" in t.user_attrs)})
    return rows


def on_bounds(rows: list[dict[str, Any]], space: Space, tol: float = 0.02) -> dict[str, float]:
    """Share of trials at the low or high end (within ``tol`` of the unit range) of each
    dimension: many means the range is too narrow."""
    out = {}
    for d in space.dims:
        if d.high == d.low:
            continue
        u = [d.to_unit(r[d.name]) for r in rows]
        out[d.name] = sum(x <= tol or x >= 1 - tol for x in u) / max(len(u), 1)
    return out


def fine_tune(tp, p, hp: LoraHyper, train, epochs: float, tok, names: list[str],
              on_step=None):
    """LoRA-fine-tune a fresh copy of the teacher ``tp.model``; return the unmerged peft
    model. ``on_step`` (e.g. a :class:`distillery.curves.Curve`) sees every step."""
    from distillery import lora, models, training
    from distillery.device import resolve_device
    from distillery.io import seed_everything

    seed_everything(p.seed)
    model = lora.apply_lora(models.load_classifier(tp.model, names), hp, p.target_modules)
    model.to(resolve_device(tp.device))
    cfg = training.TrainConfig(lr=hp.lr, batch_size=p.batch_size, max_length=tp.max_length,
                               epochs=epochs, weight_decay=hp.weight_decay, seed=p.seed)
    training.train(model, train, tok, cfg, desc=f"lora r={hp.rank}", on_step=on_step)
    return model


def final_steps(p, n_train: int) -> int:
    """Optimiser steps of the final retrain on ``n_train`` examples."""
    from distillery import training

    return training.TrainConfig(lr=1.0, batch_size=p.batch_size, max_length=1,
                                epochs=p.final_epochs).total_steps(n_train)


@dataclass
class Trials:
    """One HPO worker: opens the study and runs LoRA trials until it is full. Picklable
    (params dataclasses and paths only), so :func:`runner.run_workers` can spawn it.
    Subclasses change only :meth:`objective` (e.g. a causal-LM teacher scored by lm-eval,
    :class:`distillery.llm.teacher.CausalTrials`)."""

    teacher: Any  # TeacherParams
    hpo: Any  # HpoParams
    metric: str
    data: str
    storage: str
    study: str

    def objective(self, splits: dict[str, Any], names: list[str], trial_train: Any,
                  stack: ExitStack) -> Callable[[dict[str, Any]], float]:
        """``objective(params) -> score`` of one trial (resources it holds go on ``stack``)."""
        from distillery import evaluate, models

        p, tp = self.hpo, self.teacher
        tok = models.load_tokenizer(tp.model)

        def score(params: dict[str, Any]) -> float:
            model = fine_tune(tp, p, hyper(params), trial_train, p.trial_epochs, tok, names)
            return evaluate.evaluate(model, splits["val"], tok, tp.max_length, self.metric)

        return score

    def __call__(self, worker: int) -> None:
        import torch

        from distillery.data import load_prepared
        from distillery.io import setup_logging
        from distillery.search import runner

        p = self.hpo
        if p.workers > 1:
            setup_logging()
            torch.set_num_threads(runner.worker_threads(p.workers))
        splits, names = load_prepared(self.data)
        trial_train = splits["train"].subset(range(min(p.trial_examples, len(splits["train"]))))
        space = search_space(p)
        with ExitStack() as stack:
            objective = self.objective(splits, names, trial_train, stack)
            study, _ = runner.open_study(self.storage, self.study, p.sampler, space,
                                         p.seed + worker, p.n_initial)
            runner.optimize(study, space, objective, p.n_trials,
                            desc=f"hpo {p.sampler}" + (f" worker {worker}" if p.workers > 1
                                                       else ""))


def search_space(p) -> Space:
    """The search space of ``HpoParams``."""
    return lora_space(p.lr, p.rank, p.alpha, p.dropout, p.weight_decay)
