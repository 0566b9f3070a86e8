"""lm-eval as the evaluator of record: any classifier variant scored by lm-evaluation-harness.

- :mod:`~distillery.lmeval.task`: a prepared split + prompt + verbalizers -> an lm-eval
  ``multiple_choice`` task YAML;
- :mod:`~distillery.lmeval.adapter`: the ``distillery`` model of lm-eval's registry, which
  answers the task's log-likelihood requests with a classifier's class log-probabilities
  (a torch folder or an ONNX file, :mod:`~distillery.lmeval.backends`);
- :mod:`~distillery.lmeval.harness`: ``lm_eval.simple_evaluate`` on such a task;
- ``python -m distillery.lmeval``: the command line (:mod:`~distillery.lmeval.cli`).

Importing this package registers the ``distillery`` model with lm-eval.
"""

from __future__ import annotations

from distillery.lmeval.adapter import MODEL_NAME, ClassifierLM
from distillery.lmeval.harness import score
from distillery.lmeval.task import (
    TaskSpec,
    default_prompt,
    default_verbalizers,
    read_task,
    write_task,
)

__all__ = ["MODEL_NAME", "ClassifierLM", "TaskSpec", "default_prompt", "default_verbalizers",
           "read_task", "score", "write_task"]
