"""What every baseline kind provides, and the one registry of kinds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from distillery.core.registry import Registry

META = "baseline.json"
"""The file in a baseline's folder naming its kind (and what it was trained with)."""


class Baseline(Protocol):
    """A trained baseline: raw texts (and pairs) in, ``(N, C)`` logits out."""

    labels: list[str]

    def logits(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...


KINDS: Registry = Registry("baseline")
"""kind -> module with ``train(split, val, names, params) -> (Baseline, facts)`` and
``load(folder) -> Baseline``."""


def load(folder: str | Path) -> Baseline:
    """The baseline saved in ``folder``, whatever its kind."""
    meta = json.loads((Path(folder) / META).read_text())
    return KINDS.lookup(meta["kind"]).load(Path(folder))
