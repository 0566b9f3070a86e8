"""Run lm-eval (``lm_eval.simple_evaluate``) on tasks written by :mod:`distillery.lmeval.task`
(or :mod:`distillery.lmeval.perplexity`) and read the scores back.

Tasks load through lm-eval's ``TaskManager`` with ``include_path`` = the tasks' folders and
without lm-eval's own task catalogue (``include_defaults=False``: indexing thousands of
built-in YAMLs costs seconds and nothing is needed from it). The data come from the local
jsonl through the ``datasets`` ``json`` builder; nothing is downloaded.

lm-eval reseeds Python's, NumPy's and torch's global generators on every ``simple_evaluate``
call by default (to 0, 1234, 1234), and loading a task draws from Python's. :func:`run` turns
the reseeding off and restores the three generators' states afterwards, so that scoring in
the middle of an HPO study or a training loop leaves their random streams as they were; only
the few-shot sampler is seeded (its own ``random.Random``, lm-eval's default seed 1234), so
the same few-shot examples are drawn on every call.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from distillery.core.io import UserError
from distillery.lmeval.adapter import MODEL_NAME

logger = logging.getLogger(__name__)

FEWSHOT_SEED = 1234
"""lm-eval's default seed of the few-shot sampler."""


@contextlib.contextmanager
def kept_global_rng() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's (CPU and CUDA) global generators on exit."""
    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])


def run(model: Any, tasks: Sequence[str | Path], model_args: dict[str, Any] | None = None,
        limit: int | None = None, num_fewshot: int | None = None,
        batch_size: int | None = None, device: str | None = None,
        log_samples: bool = False, fewshot_seed: int = FEWSHOT_SEED) -> dict[str, Any]:
    """``lm_eval.simple_evaluate`` on task YAMLs; the global generators are left as they were.

    Args:
        model: a registered model name (with ``model_args``) or an ``lm_eval`` ``LM`` object
            (e.g. ``HFLM(pretrained=model, tokenizer=tokenizer)``).
        tasks: task YAML files; the task name is the file's stem.
        limit: score the first ``limit`` documents of each task only.
        num_fewshot: examples from the task's few-shot split before each prompt.
        log_samples: keep the per-document requests and responses (``results["samples"]``).

    Returns:
        lm-eval's results dict (``results["results"][name]["acc,none"]``...).

    Raises:
        FileNotFoundError: lm-eval finds no task of that name in its folder.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    paths = [Path(t).resolve() for t in tasks]
    with kept_global_rng():
        manager = TaskManager(include_path=sorted({str(p.parent) for p in paths}),
                              include_defaults=False)
        missing = [p for p in paths if p.stem not in manager.all_tasks]
        if missing:
            raise UserError(f"lm-eval finds no task {missing[0].stem!r} in "
                                    f"{missing[0].parent}")
        return lm_eval.simple_evaluate(
            model=model, model_args=model_args, tasks=[p.stem for p in paths],
            task_manager=manager, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
            device=device, log_samples=log_samples, random_seed=None, numpy_random_seed=None,
            torch_random_seed=None, fewshot_random_seed=fewshot_seed,
        )


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
    task_yaml = Path(task_yaml).resolve()
    results = run(MODEL_NAME, [task_yaml], {"task": str(task_yaml), **model_args}, limit=limit,
                  num_fewshot=num_fewshot, batch_size=batch_size, device=device)
    found = results["results"][task_yaml.stem]
    return {"acc": float(found["acc,none"]), "acc_stderr": float(found["acc_stderr,none"]),
            "n": int(found["sample_len"])}
