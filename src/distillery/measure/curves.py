"""Training curves logged with DVCLive: the mean training loss over windows of steps and the
validation score at regular steps, one folder per run, shown by ``dvc plots show``.

A run writes ``<dir>/plots/metrics/train/loss.tsv`` and ``<dir>/plots/metrics/val/score.tsv``
(the ``task.metric`` score; columns ``step`` and the value) and ``<dir>/metrics.json`` (last
values); the stage declares the folder as a ``cache: false`` output and ``dvc.yaml`` plots the
two TSV files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)


class Curve:
    """A :data:`distillery.modeling.training.StepHook` that logs a training curve with DVCLive.

    Args:
        directory: DVCLive folder of this run (replaced if it exists).
        val: split the score is computed on (``None``: loss only).
        tokenizer / max_length / metric: how the score is computed
            (:func:`distillery.measure.evaluate.evaluate`).
        total_steps: steps of the run (the last one is always evaluated).
        n_evals: validation points over the run (besides step 0 if ``eval_start``).
        log_every: steps per point of the loss curve (mean over the window).
        scorer: ``scorer(model) -> score`` instead of :func:`distillery.measure.evaluate.evaluate`
            (e.g. a causal LM scored through its prompt).
    """

    def __init__(self, directory: str | Path, val: Any, tokenizer: Any, max_length: int,
                 metric: str, total_steps: int, n_evals: int = 8, log_every: int = 10,
                 scorer: Callable[[torch.nn.Module], float] | None = None) -> None:
        from dvclive import Live

        self.val, self.tokenizer, self.max_length, self.metric = val, tokenizer, max_length, metric
        self.total = total_steps
        self.eval_every = max(1, math.ceil(total_steps / max(n_evals, 1)))
        self.log_every = max(1, min(log_every, total_steps))
        self._window: list[float] = []
        self.live = Live(str(directory), save_dvc_exp=False, dvcyaml=None)
        self.last_score: float | None = None
        self.scorer = scorer

    def __call__(self, step: int, loss: float, model: torch.nn.Module) -> None:
        from distillery.measure import evaluate

        self._window.append(loss)
        self.live.step = step
        if step % self.log_every == 0 or step == self.total:
            self.live.log_metric("train/loss", sum(self._window) / len(self._window))
            self._window = []
        if self.val is not None and (step % self.eval_every == 0 or step == self.total):
            self.last_score = self.scorer(model) if self.scorer is not None else \
                evaluate.evaluate(model, self.val, self.tokenizer, self.max_length, self.metric)
            self.live.log_metric("val/score", self.last_score)

    def log_score(self, step: int, score: float) -> None:
        """Log a validation score computed elsewhere (e.g. by
        :class:`distillery.teachers.hpo.Validator`, which chooses the best checkpoint from it)."""
        self.live.step = step
        self.last_score = score
        self.live.log_metric("val/score", score)

    def close(self) -> None:
        self.live.end()

    def __enter__(self) -> Curve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
