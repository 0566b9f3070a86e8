"""lm-eval's scores of an in-memory causal LM: task accuracy (zero- and few-shot), perplexity
on a reference text, and the generic-versus-specialised comparison of the HPO stage.

The model is wrapped once in lm-eval's own ``HFLM(pretrained=model, tokenizer=tokenizer)``
(nothing is reloaded; a peft-wrapped model works as is) and scored by
``lm_eval.simple_evaluate`` (:func:`distillery.lmeval.harness.run`) on tasks written to a
folder by :func:`write_tasks`:

- the classification task of a :class:`~distillery.teachers.causal.prompt.Prompt` over a prepared
  split (:meth:`Prompt.task_spec` + :func:`distillery.lmeval.task.write_task`; few-shot examples
  come from ``train.jsonl``), so lm-eval's ``acc`` is ``argmax`` of
  :func:`~distillery.teachers.causal.scoring.class_log_scores` for the same contexts;
- the perplexity task of :mod:`distillery.lmeval.perplexity`.

Macro-F1 is computed from the per-example log-likelihoods lm-eval logs (``log_samples``):
lm-eval's own ``f1`` metric is the binary F1 of class 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distillery.core.io import UserError
from distillery.lmeval.harness import run
from distillery.lmeval.hflm import hf_lm
from distillery.lmeval.perplexity import perplexity, write_text_task
from distillery.lmeval.task import write_task
from distillery.measure import evaluate
from distillery.teachers.causal.prompt import Prompt

logger = logging.getLogger(__name__)

TASK_NAME = "distillery_classify"
"""Name (and file stem) of the classification task :func:`write_tasks` writes."""


@dataclass(frozen=True)
class EvalTasks:
    """The task YAMLs of one folder (:func:`write_tasks`)."""

    classify: Path
    """Multiple-choice task of the prompt over a prepared split."""
    text: Path
    """``loglikelihood_rolling`` task over the reference text."""


def write_tasks(folder: str | Path, prompt: Prompt, data: str | Path,
                split: str = "eval") -> EvalTasks:
    """Write the classification task of ``prompt`` over ``<data>/<split>.jsonl`` (few-shot
    pool: ``<data>/train.jsonl`` when present and ``split`` is not ``train``) and the
    perplexity task into ``folder``.

    Raises:
        FileNotFoundError: the split, or the reference text (:mod:`~distillery.lmeval.perplexity`).
    """
    data = Path(data)
    scored = data / f"{split}.jsonl"
    if not scored.is_file():
        raise UserError(f"{scored} not found: run `dvc repro prepare`")
    fewshot = data / "train.jsonl"
    spec = prompt.task_spec(TASK_NAME, scored,
                            fewshot if fewshot.is_file() and split != "train" else None)
    return EvalTasks(write_task(folder, spec), write_text_task(folder))


@dataclass(frozen=True)
class TaskScores:
    """lm-eval's result on a classification task, with the per-example numbers it logged."""

    acc: float
    """lm-eval's ``acc``."""
    acc_stderr: float
    log_likelihoods: np.ndarray
    """``(N, C)``: lm-eval's log-likelihood of each class's verbalizer, in split order."""
    labels: np.ndarray
    """``(N,)`` gold class ids."""
    contexts: list[str]
    """The context lm-eval scored for each example (few-shot examples included)."""

    def metrics(self) -> dict[str, float]:
        """``{"acc", "acc_stderr", "macro_f1", "n"}``."""
        return {"acc": self.acc, "acc_stderr": self.acc_stderr,
                "macro_f1": evaluate.macro_f1(self.log_likelihoods, self.labels),
                "n": len(self.labels)}


def task_scores(model, tokenizer, task: str | Path, num_fewshot: int = 0,
                limit: int | None = None, batch_size: int = 16,
                max_length: int | None = None, lm: Any = None) -> TaskScores:
    """Run lm-eval on a classification task written by :func:`write_tasks` (or
    :func:`distillery.lmeval.task.write_task`).

    Args:
        task: the task's YAML.
        num_fewshot: examples from the task's few-shot split before each prompt.
        limit: score the first ``limit`` examples only.
        lm: an :func:`~distillery.lmeval.hflm.hf_lm` to reuse (then ``model``, ``tokenizer``,
            ``batch_size`` and ``max_length`` are ignored).
    """
    task = Path(task)
    if lm is None:
        lm = hf_lm(model, tokenizer, batch_size, max_length)
    results = run(lm, [task], limit=limit, num_fewshot=num_fewshot, log_samples=True)
    found = results["results"][task.stem]
    samples = sorted(results["samples"][task.stem], key=lambda s: s["doc_id"])
    stderr = found.get("acc_stderr,none")
    return TaskScores(
        acc=float(found["acc,none"]),
        acc_stderr=float(stderr) if isinstance(stderr, int | float) else float("nan"),
        log_likelihoods=np.array([[ll for ll, _ in s["filtered_resps"]] for s in samples],
                                 dtype=np.float64),  # (N, C)
        labels=np.array([int(s["target"]) for s in samples]),
        contexts=[s["arguments"][0][0] for s in samples],
    )


def lm_eval_accuracy(model, tokenizer, task: str | Path, num_fewshot: int = 0,
                     limit: int | None = None, batch_size: int = 16,
                     max_length: int | None = None, lm: Any = None) -> dict[str, float]:
    """lm-eval's accuracy (and macro-F1) of a causal LM on a classification task.

    See :func:`task_scores` for the arguments.

    Returns:
        ``{"acc", "acc_stderr", "macro_f1", "n"}``.
    """
    return task_scores(model, tokenizer, task, num_fewshot, limit, batch_size, max_length,
                       lm).metrics()


def measure(model, tokenizer, tasks: EvalTasks, shots: tuple[int, ...] = (0,),
            limit: int | None = None, batch_size: int = 16, max_length: int | None = None,
            text_batch_size: int = 1) -> dict[str, float]:
    """Task accuracy for each number of shots (one ``HFLM`` around the model) and perplexity
    on the reference text.

    Args:
        shots: numbers of few-shot examples to score with (``0`` = zero-shot).
        limit / batch_size / max_length: of :func:`task_scores`.
        text_batch_size: rolling windows per forward for perplexity (the documents differ in
            length; 1 pads nothing).

    Returns:
        ``acc_<k>shot`` and ``macro_f1_<k>shot`` for every ``k`` of ``shots``, and the keys of
        :func:`~distillery.lmeval.perplexity.perplexity`.
    """
    lm = hf_lm(model, tokenizer, batch_size, max_length)
    out: dict[str, float] = {}
    for k in shots:
        found = lm_eval_accuracy(None, None, tasks.classify, k, limit, lm=lm)
        out |= {f"acc_{k}shot": found["acc"], f"macro_f1_{k}shot": found["macro_f1"]}
        logger.info("%d-shot: acc %.4f, macro-F1 %.4f (%d examples)", k, found["acc"],
                    found["macro_f1"], found["n"])
    out |= perplexity(model, tokenizer, tasks.text, text_batch_size, max_length)
    return out


def generic_vs_specialised(base: dict[str, float], specialised: dict[str, float],
                           num_fewshot: int) -> dict[str, float]:
    """The flat metrics of the HPO stage: what fine-tuning gained on the task and what it
    cost in general language modelling.

    Args:
        base: :func:`measure` of the model before fine-tuning, with ``shots=(0, k)``.
        specialised: :func:`measure` of the fine-tuned model, with ``shots=(0,)``.
        num_fewshot: ``k``.

    Returns:
        Base zero- and ``k``-shot accuracy, the specialised model's accuracy, both
        word perplexities and bits per byte, and the deltas (accuracy gained over each base
        figure; perplexity ratio specialised / base, > 1 = general text modelled worse).
    """
    k = num_fewshot
    b0, bk, s0 = base["acc_0shot"], base[f"acc_{k}shot"], specialised["acc_0shot"]
    return {
        "base_zero_shot_acc": b0, "base_few_shot_acc": bk, "few_shot_k": k,
        "specialised_acc": s0,
        "acc_gain_over_zero_shot": s0 - b0, "acc_gain_over_few_shot": s0 - bk,
        "base_word_perplexity": base["word_perplexity"],
        "specialised_word_perplexity": specialised["word_perplexity"],
        "word_perplexity_ratio": specialised["word_perplexity"] / base["word_perplexity"],
        "base_bits_per_byte": base["bits_per_byte"],
        "specialised_bits_per_byte": specialised["bits_per_byte"],
        "bits_per_byte_delta": specialised["bits_per_byte"] - base["bits_per_byte"],
    }
