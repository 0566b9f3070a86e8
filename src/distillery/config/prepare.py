"""The ``prepare:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import positive


@dataclass
class PrepareParams:
    """Subsampling of the train split into train / validation / transfer splits."""

    n_train: int | float | Literal["all"] = 4000
    """Labelled training examples (stratified): a count, ``all`` or a fraction in (0, 1] of
    what is left once ``n_val`` and ``n_transfer`` are set aside (a many-class task wants all
    its labelled data)."""
    n_val: int = 500
    """Validation examples carved from train for model selection (stratified)."""
    n_transfer: int = 16000
    """Extra train sentences, labels dropped, that the teacher labels for distillation
    (0 = none)."""
    seed: int = 0
    """Seed of the subsampling."""

    def check(self) -> list[str]:
        out = positive(self, "n_val")
        if isinstance(self.n_train, float) and not 0 < self.n_train <= 1:
            out.append(f"n_train: got {self.n_train}, a fraction must be in (0, 1]")
        elif isinstance(self.n_train, int) and self.n_train <= 0:
            out.append(f"n_train: got {self.n_train}, expected a positive count, a fraction "
                       "in (0, 1] or 'all'")
        if self.n_transfer < 0:
            out.append(f"n_transfer: got {self.n_transfer}, expected >= 0")
        return out
