"""The ``task:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TaskParams:
    """What "better" means for this study."""

    metric: Literal["accuracy", "macro_f1"] = "accuracy"
    """Drives NAS and HPO selection, the report's targets and the Pareto plot. ``macro_f1``
    weighs every class equally: use it for imbalanced or many-class data."""

    def check(self) -> list[str]:
        return []  # the Literal type already restricts ``metric``
