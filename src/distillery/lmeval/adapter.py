"""A sequence classifier as an lm-eval language model: ``--model distillery``.

Registered with lm-eval's model registry the way lm-eval registers its own models
(``@register_model("hf")`` on ``HFLM`` in ``lm_eval/models/huggingface.py``), subclassing
``lm_eval.api.model.LM``. It answers the ``loglikelihood`` requests of a task written by
:func:`distillery.lmeval.task.write_task`: each request is ``(context, continuation)`` with
the context = (few-shot examples +) the prompt of one example and the continuation = the
verbalizer of one class. The adapter finds the example from the context (an index of the
rendered prompts of the task's split), the class from the verbalizer, and answers with the
class's log-probability ``log_softmax(logits)`` and whether that class is the argmax — so
lm-eval's ``acc`` (argmax of the choices' log-likelihoods) is the classifier's accuracy.

Model args: ``path`` (a model folder or an ``.onnx`` file), ``task`` (the task's YAML, JSON
or folder), optional ``tokenizer`` (a folder; needed for ONNX files), ``max_length``
(default: the ONNX file's metadata; required for torch folders), ``threads`` (ONNX Runtime
intra-op threads, 0 = its default); lm-eval's ``batch_size`` and ``device`` are honoured.
"""

from __future__ import annotations

import logging
import string
from typing import Any

import numpy as np
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from distillery.core.io import UserError
from distillery.data.prepared import Split, read_split
from distillery.lmeval.backends import load_backend
from distillery.lmeval.task import TaskSpec, read_task

logger = logging.getLogger(__name__)

MODEL_NAME = "distillery"
DEFAULT_BATCH_SIZE = 64
"""Classifier batch when lm-eval passes none, ``auto`` or its CLI default of 1."""

Example = tuple[str, str | None]
"""``(text, text_pair)`` of one prepared example."""


class ContextIndex:
    """Maps the contexts of a task's requests back to the examples of its split.

    Every example of the split is rendered with the task's prompt; a context is looked up
    whole, and, when few-shot examples (or a description) come before it, by its suffixes
    that start where the prompt's leading literal text occurs, last occurrence first.
    """

    def __init__(self, spec: TaskSpec) -> None:
        split = read_split(spec.data_file)
        pairs = split.pairs if split.pairs is not None else [None] * len(split)
        self.spec = spec
        self.examples: dict[str, Example] = {}
        for text, pair in zip(split.texts, pairs, strict=True):
            known = self.examples.setdefault(spec.render(text, pair), (text, pair))
            if known != (text, pair):
                logger.warning("two examples render to the same prompt (%r): put literal "
                               "text between {text} and {text_pair}", spec.render(text, pair))
        self.head = ""
        """Literal text before the prompt's first placeholder."""
        for literal, name, _, _ in string.Formatter().parse(spec.prompt):
            self.head += literal
            if name is not None:
                break

    def find(self, context: str) -> Example:
        """The example whose prompt ends ``context``.

        Raises:
            UserError: no example of the split renders to the end of ``context``.
        """
        if context in self.examples:
            return self.examples[context]
        if self.head:
            end = len(context)
            while (pos := context.rfind(self.head, 0, end)) > 0:
                if context[pos:] in self.examples:
                    return self.examples[context[pos:]]
                end = pos + len(self.head) - 1
        else:
            for pos in range(len(context) - 1, 0, -1):
                if context[pos:] in self.examples:
                    return self.examples[context[pos:]]
        raise UserError(f"no example of {self.spec.data_file} renders to the end of the context "
                        f"{context[-160:]!r}: was the task written with another prompt or data?")


@register_model(MODEL_NAME)
class ClassifierLM(LM):
    """Class log-probabilities of a sequence classifier as lm-eval log-likelihoods."""

    def __init__(self, path: str, task: str, tokenizer: str | None = None,
                 max_length: int | str | None = None, threads: int | str = 0,
                 batch_size: int | str | None = None, max_batch_size: int | None = None,
                 device: str | None = None, **unknown: Any) -> None:
        super().__init__()
        if unknown:
            raise UserError(f"model_args: unknown {', '.join(sorted(unknown))}; allowed: path, "
                            "task, tokenizer, max_length, threads (and lm-eval's batch_size, "
                            "device)")
        self.spec = read_task(task)
        self.backend = load_backend(str(path), tokenizer, device, int(threads))
        self.path = str(path)
        self.max_length = self._max_length(max_length)
        self.batch_size = _batch_size(batch_size, max_batch_size)
        self._check_model()
        self.index = ContextIndex(self.spec)
        self.classes = {v: i for i, v in enumerate(self.spec.verbalizers)}

    def _max_length(self, given: int | str | None) -> int:
        if given is not None:
            return int(given)
        if self.backend.max_length is not None:
            return self.backend.max_length
        raise UserError(f"max_length: {self.path} does not record the tokens per example it was "
                        "trained with; give teacher.max_length of params.yaml as model arg "
                        "max_length=... or --max-length")

    def _check_model(self) -> None:
        """The model's classes must be the task's, in the same order."""
        labels, names = self.backend.labels, self.spec.labels
        if len(labels) != len(names):
            raise UserError(f"{self.path} has {len(labels)} classes ({', '.join(labels)}); the "
                            f"task {self.spec.name} has {len(names)} ({', '.join(names)})")
        if labels != names:
            if sorted(labels) == sorted(names):
                raise UserError(f"{self.path} orders its classes {labels}, the task {names}: "
                                "class ids would not match")
            logger.warning("%s names its classes %s, the task %s: scoring by class id",
                           self.path, labels, names)
        if self.backend.pair is not None and self.backend.pair != self.spec.pair:
            kind = "sentence pairs" if self.backend.pair else "single texts"
            raise UserError(f"{self.path} was exported for {kind}; the task "
                            f"{self.spec.name} is not")

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        """``(log p(class | example), class is the argmax)`` per request; every distinct
        example is classified once, in batches."""
        unique: dict[Example, int] = {}
        asked: list[tuple[int, int]] = []
        for req in requests:
            context, continuation = req.args
            example = self.index.find(context)
            doc = getattr(req, "doc", None)
            if isinstance(doc, dict) and doc.get("text", example[0]) != example[0]:
                raise RuntimeError(f"context maps to {example[0]!r}, lm-eval's doc is "
                                   f"{doc['text']!r}")
            asked.append((unique.setdefault(example, len(unique)), self._class(continuation)))
        if not asked:
            return []
        texts = [t for t, _ in unique]
        pairs = [p for _, p in unique] if self.spec.pair else None
        logits = self.backend.logits(Split(texts, [0] * len(texts), pairs), self.max_length,
                                     self.batch_size).astype(np.float64)  # (U, C)
        logp = logits - _logsumexp(logits)  # (U, C)
        best = logits.argmax(-1)  # (U,)
        out = [(float(logp[u, c]), bool(best[u] == c)) for u, c in asked]
        for req, answer in zip(requests, out, strict=True):
            self.cache_hook.add_partial("loglikelihood", req.args, answer)
        return out

    def _class(self, continuation: str) -> int:
        if continuation not in self.classes:
            raise UserError(f"continuation {continuation!r} is none of the task's verbalizers "
                            f"{self.spec.verbalizers}: use a task written by distillery.lmeval")
        return self.classes[continuation]

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        raise NotImplementedError(
            "the distillery adapter wraps a sequence classifier: it scores the choices of "
            "multiple_choice tasks (loglikelihood) only; perplexity (loglikelihood_rolling) "
            "needs a generative language model")

    def generate_until(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError(
            "the distillery adapter wraps a sequence classifier: it scores the choices of "
            "multiple_choice tasks (loglikelihood) only; generate_until tasks need a "
            "generative language model")

    def get_model_info(self) -> dict[str, Any]:
        """Recorded by lm-eval in ``results["config"]``."""
        return {"backend": self.backend.kind, "model_path": self.path,
                "max_length": self.max_length, "classifier_batch_size": self.batch_size}


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """``log(sum(exp(x)))`` over the last axis, kept as a ``(N, 1)`` column."""
    m = x.max(-1, keepdims=True)
    return m + np.log(np.exp(x - m).sum(-1, keepdims=True))


def _batch_size(batch_size: int | str | None, max_batch_size: int | None) -> int:
    """lm-eval's ``batch_size`` as a classifier batch: an integer > 1 as given, else
    :data:`DEFAULT_BATCH_SIZE` (capped by ``max_batch_size``)."""
    try:
        size = int(batch_size)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        size = 1  # None or "auto[:N]"
    if size <= 1:
        size = min(DEFAULT_BATCH_SIZE, int(max_batch_size or DEFAULT_BATCH_SIZE))
    return size
