"""Run lm-eval (``lm_eval.simple_evaluate``) on a task written by :mod:`distillery.lmeval.task`
with the ``distillery`` model, and read its scores back.

Tasks load through lm-eval's ``TaskManager`` with ``include_path`` = the task's folder and
without lm-eval's own task catalogue (``include_defaults=False``: indexing thousands of
built-in YAMLs costs seconds and nothing is needed from it). The data come from the local
jsonl through the ``datasets`` ``json`` builder; nothing is downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from distillery.lmeval.adapter import MODEL_NAME

logger = logging.getLogger(__name__)


def score(task_yaml: str | Path, model_args: dict[str, Any], limit: int | None = None,
          num_fewshot: int | None = None, batch_size: int | None = None,
          device: str | None = None) -> dict[str, float]:
    """lm-eval's scores of a classifier on a task.

    Args:
        task_yaml: the YAML written by :func:`distillery.lmeval.task.write_task`.
        model_args: arguments of :class:`~distillery.lmeval.adapter.ClassifierLM` (``path``,
            optionally ``tokenizer``, ``max_length``, ``threads``); ``task`` defaults to
            ``task_yaml``.
        limit: score the first ``limit`` examples only.
        num_fewshot: examples put before each prompt (a classifier ignores them; the score
            does not change).
        batch_size: classifier batch (default 64).
        device: ``cpu`` (default) or ``cuda``.

    Returns:
        ``{"acc": ..., "acc_stderr": ..., "n": examples scored}``.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    task_yaml = Path(task_yaml).resolve()
    name = task_yaml.stem
    manager = TaskManager(include_path=str(task_yaml.parent), include_defaults=False)
    if name not in manager.all_tasks:
        raise FileNotFoundError(f"lm-eval finds no task {name!r} in {task_yaml.parent}")
    results = lm_eval.simple_evaluate(
        model=MODEL_NAME, model_args={"task": str(task_yaml), **model_args}, tasks=[name],
        task_manager=manager, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
        device=device, log_samples=False,
    )
    found = results["results"][name]
    return {"acc": float(found["acc,none"]), "acc_stderr": float(found["acc_stderr,none"]),
            "n": int(found["sample_len"])}
