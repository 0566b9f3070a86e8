"""A causal LM as a classifier: the prompt template, one verbalizer per label, and THE
tokenisation path of causal-LM requests.

Every example becomes a *context* (the template filled with its text, and its second text
for pairs) and every class a *continuation* (its verbalizer, e.g. ``" positive"``). They are
tokenised exactly as lm-eval's ``HFLM.loglikelihood`` does, so that the scores here and an
lm-eval task agree: trailing whitespace of the context moves to the continuation, the whole
``context + continuation`` is tokenised (with the tokenizer's own special tokens, e.g. a BOS)
and the continuation is what follows the separately tokenised context. Scoring
(:mod:`distillery.teachers.causal.scoring`) and fine-tuning
(:mod:`distillery.teachers.causal.finetune`) both read :func:`encode_requests`.

A prompt is validated by the same rules as an lm-eval task (:mod:`distillery.lmeval.task`:
placeholders, verbalizers) and turns into one with :meth:`Prompt.task_spec`: the template is
the task's ``doc_to_text``, the verbalizers its ``doc_to_choice``, with an empty
``target_delimiter`` (the verbalizer carries its own leading space), so lm-eval asks the model
for exactly the context and continuations :func:`encode_requests` tokenises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillery.core.io import UserError
from distillery.lmeval.task import (
    TaskSpec,
    default_prompt,
    default_verbalizers,
    prompt_problems,
    verbalizer_problems,
)

PROMPT_KEY = "teacher.prompt"
VERBALIZERS_KEY = "teacher.verbalizers"


@dataclass(frozen=True)
class Request:
    """One example, tokenised: its context and the continuation of every class."""

    context: list[int]
    continuations: list[list[int]]
    """One token list per class (index = class id)."""


@dataclass(frozen=True)
class Prompt:
    """Template, verbalizers and label names of a causal-LM classifier.

    Build it with :meth:`build`, which validates and fills the defaults.
    """

    template: str
    """``str.format`` template with ``{text}`` (and ``{text_pair}`` for pair tasks)."""
    verbalizers: tuple[str, ...]
    """Continuation scored for each class (index = class id), e.g. ``" positive"``."""
    labels: tuple[str, ...]
    """Class names (index = class id)."""
    pair: bool = False

    @classmethod
    def build(cls, labels: Sequence[str], template: str | None = None,
              verbalizers: Sequence[str] | None = None, pair: bool = False) -> Prompt:
        """Validate and fill defaults: the template of the task kind, and each label name with
        a leading space as its verbalizer.

        Raises:
            UserError: every problem at once, each naming its params key.
        """
        template = template or default_prompt(pair)
        verbs = tuple(verbalizers if verbalizers is not None else default_verbalizers(labels))
        problems = (prompt_problems(template, pair, PROMPT_KEY)
                    + verbalizer_problems(verbs, labels, VERBALIZERS_KEY))
        if problems:
            raise UserError("; ".join(problems))
        return cls(template, verbs, tuple(labels), pair)

    def context(self, text: str, text_pair: str | None = None) -> str:
        """The template filled with one example."""
        if self.pair and text_pair is None:
            raise ValueError("a pair prompt needs text_pair")
        return self.template.format(text=text, text_pair=text_pair)

    def check_tokens(self, tokenizer) -> None:
        """Checks that need the tokenizer: every verbalizer tokenises to at least one token,
        after a context too, and no two classes get the same tokens.

        Raises:
            UserError: naming ``teacher.verbalizers`` and the offending values.
        """
        problems = []
        alone = [tokenizer(v, add_special_tokens=False)["input_ids"] for v in self.verbalizers]
        probe = self.context("a", "b" if self.pair else None)
        after = encode_requests(tokenizer, self, [probe], None, formatted=True)[0].continuations
        for v, ids, cont in zip(self.verbalizers, alone, after, strict=True):
            if not ids:
                problems.append(f"{VERBALIZERS_KEY}: {v!r} tokenises to nothing")
            elif not cont:
                problems.append(f"{VERBALIZERS_KEY}: {v!r} leaves no token of its own after the "
                                "prompt (it merges into the prompt's last token)")
        seen: dict[tuple[int, ...], str] = {}
        for v, cont in zip(self.verbalizers, after, strict=True):
            if cont and tuple(cont) in seen:
                problems.append(f"{VERBALIZERS_KEY}: {seen[tuple(cont)]!r} and {v!r} tokenise "
                                f"to the same tokens {cont}; classes need distinct verbalizers")
            seen.setdefault(tuple(cont), v)
        if problems:
            raise UserError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (saved in the config of a fine-tuned causal classifier)."""
        return {"template": self.template, "verbalizers": list(self.verbalizers),
                "labels": list(self.labels), "pair": self.pair}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prompt:
        return cls.build(d["labels"], d["template"], d["verbalizers"], bool(d.get("pair")))

    def task_spec(self, name: str, data_file: str | Path,
                  fewshot_file: str | Path | None = None) -> TaskSpec:
        """The lm-eval task of this prompt over a prepared split (write it with
        :func:`distillery.lmeval.task.write_task`).

        Args:
            name: lm-eval task name (also the YAML's file name).
            data_file: the scored split (a prepared ``eval.jsonl``).
            fewshot_file: the split few-shot examples are drawn from (``train.jsonl``).
        """
        return TaskSpec(name=name, prompt=self.template, verbalizers=list(self.verbalizers),
                        labels=list(self.labels), pair=self.pair, data_file=str(data_file),
                        fewshot_file=None if fewshot_file is None else str(fewshot_file))


def encode_requests(tokenizer, prompt: Prompt, texts: Sequence[str],
                    pairs: Sequence[str] | None, formatted: bool = False) -> list[Request]:
    """Tokenise every example's context and every class's continuation as lm-eval does.

    Args:
        tokenizer: the causal LM's tokenizer.
        prompt: template and verbalizers.
        texts / pairs: the examples (``pairs`` None for single sentences).
        formatted: ``texts`` are already filled templates (``pairs`` ignored).

    Returns:
        One :class:`Request` per example.
    """
    contexts = list(texts) if formatted else [
        prompt.context(t, None if pairs is None else pairs[i]) for i, t in enumerate(texts)]
    wholes, ctxs = [], []
    for ctx in contexts:
        stripped = ctx.rstrip()  # its trailing whitespace starts every continuation
        ctxs.append(stripped)
        wholes += [ctx + v for v in prompt.verbalizers]
    ctx_ids = tokenizer(ctxs)["input_ids"] if ctxs else []
    whole_ids = tokenizer(wholes)["input_ids"] if wholes else []
    n_cls = len(prompt.verbalizers)
    out = []
    for i, ctx in enumerate(ctx_ids):
        conts = [list(w[len(ctx):]) for w in whole_ids[i * n_cls:(i + 1) * n_cls]]
        out.append(Request(list(ctx), conts))
    return out
