"""Box-shaped search spaces shared by every sampler: named dimensions, each a float or an
integer range on a linear or log scale, mapped to and from the unit hypercube.

Partition samplers (SOO, BaMSOO) and the Latin-hypercube design work in the unit cube; Optuna
sees the same space as ``FloatDistribution`` / ``IntDistribution``, so every sampler stores
its trials the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

Params = dict[str, float | int]


@dataclass(frozen=True)
class Dim:
    """One searched hyperparameter: ``low <= value <= high``."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"{self.name}: low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.name}: a log-scaled range must start above 0, got {self.low}")

    def _ends(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high)
        return float(self.low), float(self.high)

    def from_unit(self, u: float) -> float | int:
        """The value at position ``u`` in [0, 1] (integers: nearest, inside the range)."""
        lo, hi = self._ends()
        v = lo + min(max(u, 0.0), 1.0) * (hi - lo)
        v = math.exp(v) if self.log else v
        if self.integer:
            return int(min(max(round(v), self.low), self.high))
        return float(min(max(v, self.low), self.high))

    def to_unit(self, value: float) -> float:
        lo, hi = self._ends()
        v = math.log(value) if self.log else float(value)
        return 0.0 if hi == lo else (v - lo) / (hi - lo)

    def distinct(self, u_lo: float, u_hi: float) -> bool:
        """Whether the unit interval ``[u_lo, u_hi]`` holds more than one value: an integer
        cell narrower than one step cannot be split further."""
        if not self.integer:
            return u_hi > u_lo
        return self.from_unit(u_lo) != self.from_unit(u_hi)

    def distribution(self) -> BaseDistribution:
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)


@dataclass(frozen=True)
class Space:
    """An ordered set of :class:`Dim`."""

    dims: tuple[Dim, ...]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    def __len__(self) -> int:
        return len(self.dims)

    def from_unit(self, u: Sequence[float]) -> Params:
        return {d.name: d.from_unit(float(x)) for d, x in zip(self.dims, u, strict=True)}

    def to_unit(self, params: Mapping[str, float]) -> np.ndarray:
        return np.array([d.to_unit(params[d.name]) for d in self.dims])

    def distributions(self) -> dict[str, BaseDistribution]:
        return {d.name: d.distribution() for d in self.dims}

    def key(self, params: Mapping[str, float]) -> tuple[float, ...]:
        """Hashable identity of a configuration: two trials with the same key are the same
        experiment (floats rounded to 10 significant digits)."""
        return tuple(float(f"{float(params[d.name]):.10g}") for d in self.dims)

    def latin_hypercube(self, n: int, seed: int) -> list[Params]:
        """``n`` Latin-hypercube points (scipy ``qmc``), one per stratum of every dimension."""
        if n <= 0:
            return []
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(self), seed=seed).random(n)  # (n, d)
        return [self.from_unit(row) for row in unit]
