"""Generic vs specialised, as the GPT-2 study did it: the same prompts, greedy answers side by
side, and what they are worth.

The prompt set: the first ``llm.label_prompts`` eval texts in the teacher's prompt (the format
the specialised model was fine-tuned on: ``"Review: {text}\\nSentiment:"``), and
``llm.open_prompts`` in the model's chat template (general ability after specialisation). An
answer to a label prompt is read as a label when its first line starts with exactly one label
name or verbalizer (case and surrounding punctuation ignored); anything else is a failure to
answer (:func:`parse_label`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from distillery.teachers.causal.prompt import Prompt


@dataclass(frozen=True)
class PromptItem:
    """One prompt of the set."""

    kind: str
    """``label`` or ``open``."""
    text: str
    """What a reader sees: the eval text, or the open prompt."""
    model_input: str
    """What the model reads."""
    label: int | None = None
    """The gold class of a label prompt."""


def prompt_set(prompt: Prompt, texts: Sequence[str], labels: Sequence[int],
               open_prompts: Sequence[str], tokenizer, n_label: int) -> list[PromptItem]:
    """The label prompts (first ``n_label`` texts) then the open prompts."""
    items = [PromptItem("label", t, prompt.context(t), int(y))
             for t, y in zip(texts[:n_label], labels[:n_label], strict=True)]
    for q in open_prompts:
        chat = getattr(tokenizer, "chat_template", None)
        text = tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True) if chat else q
        items.append(PromptItem("open", q, text))
    return items


def first_line(answer: str) -> str:
    """The answer's first non-empty line, stripped."""
    return next((line.strip() for line in answer.splitlines() if line.strip()), "")


def parse_label(answer: str, prompt: Prompt) -> int | None:
    """The class an answer names, or None (no label, or more than one fits)."""
    head = re.sub(r"^[\W_]+", "", first_line(answer).lower())
    found = set()
    for i, (name, verb) in enumerate(zip(prompt.labels, prompt.verbalizers, strict=True)):
        for word in {name.lower().strip(), verb.lower().strip()}:
            if word and re.match(re.escape(word) + r"(\W|$)", head):
                found.add(i)
    return found.pop() if len(found) == 1 else None


def summary(answers: Sequence[str], items: Sequence[PromptItem], prompt: Prompt
            ) -> dict[str, float]:
    """``answer_failure_rate`` (label prompts whose answer names no label),
    ``answer_accuracy`` (correct among those that do) and ``answered``."""
    parsed = [(parse_label(a, prompt), it.label) for a, it in zip(answers, items, strict=True)
              if it.kind == "label"]
    named = [(p, y) for p, y in parsed if p is not None]
    return {"answered": len(named),
            "answer_failure_rate": 1 - len(named) / len(parsed) if parsed else float("nan"),
            "answer_accuracy": (sum(p == y for p, y in named) / len(named)) if named
            else float("nan")}


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def table(items: Sequence[PromptItem], answers: dict[str, Sequence[str]], prompt: Prompt
          ) -> str:
    """Markdown: one row per prompt, one answer column per model (first line for label
    prompts, with ✓ / ✗ / "no label")."""
    names = list(answers)
    lines = ["| prompt | gold | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for i, it in enumerate(items):
        gold = prompt.labels[it.label] if it.label is not None else ""
        cells = []
        for n in names:
            a = answers[n][i]
            if it.kind == "label":
                got = parse_label(a, prompt)
                mark = "no label" if got is None else ("✓" if got == it.label else "✗")
                cells.append(f"{_cell(first_line(a), 60)} ({mark})")
            else:
                cells.append(_cell(a))
        lines.append(f"| {_cell(it.text, 120)} | {gold} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
