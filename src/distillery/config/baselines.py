"""The ``baselines:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from distillery.config.base import positive

BaselineKind = Literal["tfidf", "static"]


@dataclass
class BaselinesParams:
    """Cheap baselines benchmarked beside the students (stage ``baselines``)."""

    kinds: list[BaselineKind] = field(default_factory=lambda: ["tfidf", "static"])
    """Baselines to train; ``[]`` = none."""
    tfidf_word_ngrams: list[int] = field(default_factory=lambda: [1, 2])
    """Word n-gram range ``[min, max]`` of the TF-IDF baseline."""
    tfidf_char_ngrams: list[int] = field(default_factory=lambda: [2, 5])
    """Character n-gram range (within word boundaries) of the TF-IDF baseline."""
    tfidf_min_df: int = 1
    """Ignore n-grams in fewer training texts than this."""
    tfidf_c: list[float] = field(default_factory=lambda: [1.0, 3.0, 10.0, 30.0, 100.0])
    """Inverse regularisation strengths of the logistic regression tried; the best on val
    is kept."""
    static_dims: int = 256
    """Width of the static embeddings (model2vec's PCA of the teacher's token vectors)."""
    static_epochs: float = 3.0
    """Passes over train + transfer for the static student."""
    static_lr: float = 5e-3
    """Learning rate of the static student (embeddings and head)."""
    static_alpha: float = 0.1
    """Share of the hard labels in the static student's loss (as ``distill.alpha``)."""
    static_temperature: float = 2.0
    """Softmax temperature of its distillation term."""
    static_seed: int = 0
    """Seed of its initialisation and batch order."""

    def check(self) -> list[str]:
        out = positive(self, "tfidf_min_df", "static_dims", "static_epochs", "static_lr",
                       "static_temperature")
        if not 0 <= self.static_alpha <= 1:
            out.append(f"static_alpha: got {self.static_alpha}, expected a value in [0, 1]")
        for key in ("tfidf_word_ngrams", "tfidf_char_ngrams"):
            r = getattr(self, key)
            if len(r) != 2 or not 1 <= r[0] <= r[1]:
                out.append(f"{key}: got {r}, expected [min, max] with 1 <= min <= max")
        if not self.tfidf_c or any(not 0 < c < float("inf") for c in self.tfidf_c):
            out.append(f"tfidf_c: got {self.tfidf_c}, expected positive finite values")
        return out
