"""What every baseline kind provides, and the one registry of kinds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from distillery.core.registry import Registry
from distillery.data.prepared import Split

META = "baseline.json"
"""The file in a baseline's folder naming its kind (and what it was trained with)."""


class Baseline(Protocol):
    """A trained baseline: raw texts (and pairs) in, ``(N, C)`` logits out."""

    labels: list[str]
    n_params: int
    provider: str
    """What runs it, for the benchmark's table (``sklearn``, ``cpu`` = ONNX Runtime)."""

    def logits(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray: ...


@dataclass
class Context:
    """What a baseline may train from; each kind writes its folder ``out / <kind>``."""

    splits: dict[str, Split]
    names: list[str]
    metric: str
    out: Path
    teacher: str | None = None
    """The fine-tuned teacher's folder (for kinds distilled from it)."""
    logits: str | None = None
    """The teacher's logits on the splits (stage ``label``)."""
    max_length: int = 128


KINDS: Registry = Registry("baseline")
"""kind -> module with ``train(Context, BaselinesParams) -> (Baseline, facts)`` (the model
saved in ``out / <kind>``) and ``load(folder) -> Baseline``."""


def load(folder: str | Path) -> Baseline:
    """The baseline saved in ``folder``, whatever its kind."""
    meta = json.loads((Path(folder) / META).read_text())
    return KINDS.lookup(meta["kind"]).load(Path(folder))
