"""Hyperparameter search of the teacher's fine-tuning: the search space, the training recipe,
validation during training (pruning, early stopping, best checkpoint) and the trial history, on
top of :mod:`distillery.search` (any registered sampler, trials on Optuna storage, resumable,
parallel workers).

* **Methods.** ``full`` fine-tuning (every weight at ``full_lr``) and ``lora`` (peft adapters
  at ``lr``: rank, alpha and dropout searched as in the HPO study this project comes from); in
  both the classification head, fresh and task-specific, trains at its own ``head_lr``. With
  both in ``hpo.method`` the method is one more searched dimension; a dimension that only one
  method reads is left out when that method is not searched.
* **Training length scales with the task.** :func:`run_epochs`: at least ``hpo.min_epochs``
  passes and at least ``hpo.steps_per_class`` optimiser steps per class, so a 64-class task
  trains four times longer than a binary one on the same data. Trials train the same number of
  passes on ``hpo.trial_examples`` (the cheaper fidelity), the winner on all of train.
* **Validation while training.** :class:`Validator` scores the validation split at
  ``hpo.evals`` evenly spaced steps: each trial reports the best score so far to Optuna, whose
  pruner (``hpo.pruner``) stops hopeless trials; ``hpo.patience`` evaluations without
  improvement stop a run early; the best checkpoint is kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from optuna.trial import FrozenTrial

from distillery.modeling.lora import LoraHyper
from distillery.search import Dim, Space

logger = logging.getLogger(__name__)

METHODS = ("full", "lora")
"""Fine-tuning methods of an encoder teacher (a causal-LM teacher: ``lora`` only)."""


@dataclass
class Recipe:
    """One point of the HPO search space: how the teacher is fine-tuned."""

    method: str
    """``full`` | ``lora``."""
    lr: float
    """Learning rate of the trained encoder weights (LoRA adapters, or every weight)."""
    head_lr: float
    """Learning rate of the classification head."""
    weight_decay: float
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0

    def lora(self) -> LoraHyper:
        return LoraHyper(lr=self.lr, rank=self.rank, alpha=self.alpha, dropout=self.dropout,
                         weight_decay=self.weight_decay)

    def label(self) -> str:
        return f"lora r={self.rank}" if self.method == "lora" else "full"


def search_space(p, causal: bool = False) -> Space:
    """The search space of ``HpoParams``: the method (when more than one), the learning rates
    of the methods searched, LoRA's rank / alpha / dropout, the head's learning rate (encoder
    teachers, unless ``head_lr`` is null: the head then trains at the encoder's rate) and
    weight decay."""
    dims = []
    if len(p.method) > 1:
        dims.append(Dim("method", 0, len(p.method) - 1, integer=True))
    if "lora" in p.method:
        dims += [Dim("lr", p.lr[0], p.lr[1], log=True),
                 Dim("rank", p.rank[0], p.rank[1], log=True, integer=True),
                 Dim("alpha", p.alpha[0], p.alpha[1], log=True, integer=True),
                 Dim("dropout", p.dropout[0], p.dropout[1])]
    if "full" in p.method:
        dims.append(Dim("full_lr", p.full_lr[0], p.full_lr[1], log=True))
    if not causal and p.head_lr is not None:
        dims.append(Dim("head_lr", p.head_lr[0], p.head_lr[1], log=True))
    dims.append(Dim("weight_decay", p.weight_decay[0], p.weight_decay[1], log=True))
    return Space(tuple(dims))


def method_of(params: dict[str, Any], p) -> str:
    """The method a trial's ``params`` ran (``hpo.method[params["method"]]``)."""
    return p.method[int(params.get("method", 0))]


def recipe(params: dict[str, Any], p) -> Recipe:
    """The :class:`Recipe` of a trial's ``params``."""
    method = method_of(params, p)
    lr = params["full_lr"] if method == "full" else params["lr"]
    extra = {} if method == "full" else {"rank": int(params["rank"]),
                                         "alpha": int(params["alpha"]),
                                         "dropout": float(params["dropout"])}
    return Recipe(method=method, lr=float(lr), head_lr=float(params.get("head_lr", lr)),
                  weight_decay=float(params["weight_decay"]), **extra)


def run_epochs(p, n_examples: int, n_classes: int) -> float:
    """Passes over ``n_examples`` of a final training run: at least ``p.min_epochs`` and at
    least ``p.steps_per_class`` optimiser steps per class."""
    per_epoch = n_examples / p.batch_size
    steps = max(math.ceil(p.min_epochs * per_epoch), p.steps_per_class * n_classes)
    return steps / per_epoch


def trial_size(p, n_train: int) -> int:
    """Training examples of a trial: ``hpo.trial_examples`` (``all`` = every one)."""
    return n_train if p.trial_examples == "all" else min(int(p.trial_examples), n_train)


def history(trials: list[FrozenTrial], space: Space, p) -> list[dict[str, Any]]:
    """One row per finished or pruned trial: its method and parameters, score (a pruned
    trial's: its best validation score when stopped), best finished score so far, whether it
    was pruned, the validation points it reached and whether it reused an identical earlier
    trial."""
    rows, best = [], -math.inf
    for t in trials:
        pruned = int(t.state.name == "PRUNED")
        value = t.value if t.value is not None else max(t.intermediate_values.values(),
                                                        default=math.nan)
        if not pruned:
            best = max(best, value)
        rows.append({"trial": t.number, "method": method_of(t.params, p),
                     **{n: t.params[n] for n in space.names if n != "method"},
                     "score": value, "best_so_far": best, "pruned": pruned,
                     "evals": t.last_step if t.last_step is not None else "",
                     "cached": int("cached" in t.user_attrs)})
    return rows


def on_bounds(rows: list[dict[str, Any]], space: Space, tol: float = 0.02) -> dict[str, float]:
    """Share of trials at the low or high end (within ``tol`` of the unit range) of each
    searched dimension: many means the range is too narrow."""
    out = {}
    for d in space.dims:
        if d.high == d.low or d.name == "method":
            continue
        u = [d.to_unit(r[d.name]) for r in rows]
        out[d.name] = sum(x <= tol or x >= 1 - tol for x in u) / max(len(u), 1)
    return out


class Validator:
    """A :data:`distillery.modeling.training.StepHook` that scores the validation split at
    ``n_evals`` evenly spaced steps (the last step always), keeps the best weights, stops training
    after ``patience`` evaluations without improvement (0 = never) and reports the best score so far
    to ``report(value, eval_index)`` (an Optuna trial's, which raises ``TrialPruned``).

    Args:
        score: ``score(model) -> float`` on the validation split (higher is better).
        total_steps: steps of the run.
        curve: a :class:`distillery.measure.curves.Curve` that logs the loss and these scores.
    """

    def __init__(self, score: Callable[[torch.nn.Module], float], total_steps: int,
                 n_evals: int, patience: int = 0, report: Callable[[float, int], None] | None
                 = None, curve: Any = None) -> None:
        n = max(1, min(n_evals, total_steps))
        self.at = {math.ceil(k * total_steps / n): k for k in range(1, n + 1)}
        self.score, self.patience, self.report, self.curve = score, patience, report, curve
        self.best, self.best_step, self.steps, self.since = -math.inf, 0, 0, 0
        self.scores: list[tuple[int, float]] = []
        self._state: dict[str, torch.Tensor] | None = None

    def __call__(self, step: int, loss: float, model: torch.nn.Module) -> bool:
        self.steps = step
        if self.curve is not None:
            self.curve(step, loss, model)
        if step not in self.at:
            return False
        value = self.score(model)
        self.scores.append((step, value))
        if self.curve is not None:
            self.curve.log_score(step, value)
        if value > self.best:
            self.best, self.best_step, self.since = value, step, 0
            self._state = {k: v.detach().to("cpu", copy=True)
                           for k, v in model.state_dict().items()}
        else:
            self.since += 1
        if self.report is not None:
            self.report(self.best, self.at[step])
        stop = bool(self.patience) and self.since >= self.patience
        if stop:
            logger.info("early stop at step %d: no better validation score for %d "
                        "evaluations (best %.4f at step %d)", step, self.since, self.best,
                        self.best_step)
        return stop

    def restore(self, model: torch.nn.Module) -> torch.nn.Module:
        """Load the best weights seen into ``model`` (in place) and return it."""
        if self._state is not None and self.best_step != self.steps:
            model.load_state_dict(self._state)
        return model


def param_groups(model: torch.nn.Module, head: tuple[str, ...], r: Recipe) -> list[dict]:
    """AdamW groups: the trainable weights of the classification head (modules named in
    ``head``) at ``r.head_lr``, every other trainable weight at ``r.lr``."""
    body, top = [], []
    for name, q in model.named_parameters():
        if q.requires_grad:
            (top if any(part in head for part in name.split(".")) else body).append(q)
    return [g for g in ({"params": body, "lr": r.lr}, {"params": top, "lr": r.head_lr})
            if g["params"]]


def fine_tune(tp, p, r: Recipe, train, epochs: float, tok, names: list[str],
              on_step=None):
    """Fine-tune a fresh copy of the teacher ``tp.model`` with recipe ``r`` for ``epochs``
    passes over ``train``; return the model (a peft model for LoRA: :func:`merged` folds it).
    ``on_step`` (e.g. a :class:`Validator`) sees every step and may stop the run."""
    from distillery.core.device import resolve_device
    from distillery.core.io import seed_everything
    from distillery.modeling import families, loading, lora, training

    seed_everything(p.seed)
    model = loading.load_classifier(tp.model, names, tp.revision)
    head = tuple(families.get(model).head)
    if r.method == "lora":
        model = lora.apply_lora(model, r.lora(), p.target_modules)
    model.to(resolve_device(tp.device))
    cfg = training.TrainConfig(lr=r.lr, batch_size=p.batch_size, max_length=tp.max_length,
                               epochs=epochs, weight_decay=r.weight_decay, seed=p.seed)
    training.train(model, train, tok, cfg, desc=r.label(), on_step=on_step,
                   params=param_groups(model, head, r))
    return model


def merged(model):
    """A plain transformers model: LoRA adapters folded in, a fully fine-tuned model as is."""
    from distillery.modeling import lora

    return lora.merge(model) if hasattr(model, "merge_and_unload") else model


def total_steps(p, n_examples: int, epochs: float) -> int:
    """Optimiser steps of ``epochs`` passes over ``n_examples``."""
    from distillery.modeling import training

    return training.TrainConfig(lr=1.0, batch_size=p.batch_size, max_length=1,
                                epochs=epochs).total_steps(n_examples)


@dataclass
class Trials:
    """One HPO worker: opens the study and runs trials until it is full. Picklable (params
    dataclasses and paths only), so :func:`runner.run_workers` can spawn it. Subclasses change
    only :meth:`objective` (e.g. a causal-LM teacher scored by lm-eval,
    :class:`distillery.teachers.causal.teacher.CausalTrials`)."""

    teacher: Any  # TeacherParams
    hpo: Any  # HpoParams
    metric: str
    data: str
    storage: str
    study: str
    causal: ClassVar[bool] = False
    """Whether the teacher is a causal LM (no classification head: no ``head_lr``)."""

    def objective(self, splits: dict[str, Any], names: list[str], trial_train: Any,
                  stack: ExitStack) -> Callable[..., Any]:
        """``objective(params, report) -> (score, extra)`` of one trial (resources it holds go
        on ``stack``); ``report(value, step)`` may stop a hopeless trial (pruning)."""
        from distillery.measure import evaluate
        from distillery.modeling import loading

        p, tp = self.hpo, self.teacher
        tok = loading.load_tokenizer(tp.model, tp.revision)
        epochs = run_epochs(p, len(splits["train"]), len(names))
        steps = total_steps(p, len(trial_train), epochs)

        def val_score(model) -> float:
            return evaluate.evaluate(model, splits["val"], tok, tp.max_length, self.metric)

        def score(params: dict[str, Any], report=None) -> tuple[float, dict[str, Any]]:
            check = Validator(val_score, steps, p.evals, p.patience, report)
            fine_tune(tp, p, recipe(params, p), trial_train, epochs, tok, names, on_step=check)
            return check.best, {"steps": check.steps, "best_step": check.best_step}

        return score

    def __call__(self, worker: int) -> None:
        import torch

        from distillery.core.io import setup_logging
        from distillery.data.prepared import load_prepared
        from distillery.search import runner

        p = self.hpo
        if p.workers > 1:
            setup_logging()
            torch.set_num_threads(runner.worker_threads(p.workers))
        splits, names = load_prepared(self.data)
        trial_train = splits["train"].subset(range(trial_size(p, len(splits["train"]))))
        space = search_space(p, self.causal)
        with ExitStack() as stack:
            objective = self.objective(splits, names, trial_train, stack)
            study, _ = runner.open_study(self.storage, self.study, p.sampler, space,
                                         p.seed + worker, p.n_initial, p.pruner, p.evals)
            runner.optimize(study, space, objective, p.n_trials,
                            desc=f"hpo {p.sampler}" + (f" worker {worker}" if p.workers > 1
                                                       else ""))



def retrain(tp, p, r: Recipe, splits: dict[str, Any], names: list[str], metric: str,
            curve_dir: str) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """Fine-tune the winning recipe ``r`` on all of train for :func:`run_epochs` passes,
    validating ``hpo.evals`` times (early stop after ``hpo.patience``), and keep the best
    checkpoint; the curve goes to ``curve_dir`` (DVCLive).

    Returns:
        The merged teacher, its tokenizer and facts for the metrics (steps planned and run,
        best step).
    """
    from distillery.measure import curves, evaluate
    from distillery.modeling import loading

    train, val = splits["train"], splits["val"]
    tok = loading.load_tokenizer(tp.model, tp.revision)
    epochs = run_epochs(p, len(train), len(names))
    steps = total_steps(p, len(train), epochs)
    with curves.Curve(curve_dir, None, tok, tp.max_length, metric, steps) as curve:
        check = Validator(lambda m: evaluate.evaluate(m, val, tok, tp.max_length, metric),
                          steps, p.evals, p.patience, curve=curve)
        model = fine_tune(tp, p, r, train, epochs, tok, names, on_step=check)
    teacher = merged(check.restore(model))
    return teacher, tok, {"final_examples": len(train), "final_epochs": round(epochs, 3),
                     "final_steps": steps, "final_steps_run": check.steps,
                     "final_best_step": check.best_step,
                     "final_stopped_early": int(check.steps < steps)}


RETRAIN_DROP_WARN = 0.01
"""A retrained teacher this far below its winning trial (same validation split) is reported:
the trial's ranking did not survive the full retrain."""
RETRAIN_GAIN_WARN = 0.05
"""A retrained teacher this far above its winning trial is reported: the trials' budget was too
small to say much about the final one."""


def fidelity_warning(trial_score: float, val_score: float, metric: str) -> str | None:
    """A warning with the fix when the trial fidelity and the final one disagree (both scores
    on the validation split), else None."""
    gap = val_score - trial_score
    if -gap > RETRAIN_DROP_WARN:
        return (f"the retrained teacher scores {metric} {val_score:.4f} on val, {-gap:.3f} "
                f"below its winning trial ({trial_score:.4f}): that configuration does not "
                "hold at the full budget; more trials (hpo.n_trials), trials closer to the "
                "final fidelity (hpo.trial_examples: all) or narrower ranges (e.g. "
                "hpo.full_lr) may find one that does")
    if gap > RETRAIN_GAIN_WARN:
        return (f"the retrained teacher scores {metric} {val_score:.4f} on val, {gap:.3f} "
                f"above its best trial ({trial_score:.4f}): the trials' budget is too small to "
                "rank configurations as the final budget would; raise hpo.trial_examples "
                "(all = the final fidelity) or hpo.steps_per_class")
    return None


def method_scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per searched method (rows of :func:`history`): the best validation score any of its
    trials reached (a pruned trial's when it was stopped) and how many were pruned."""
    out: dict[str, float] = {}
    for r in rows:
        key = f"best_score_{r['method']}"
        out[key] = max(out.get(key, -math.inf), r["score"])
        out[f"n_pruned_{r['method']}"] = out.get(f"n_pruned_{r['method']}", 0) + r["pruned"]
    return out
