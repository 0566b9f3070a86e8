"""SOO: Simultaneous Optimistic Optimization (R. Munos, "Optimistic optimization of a
deterministic function without the knowledge of its smoothness", NeurIPS 2011).

SOO partitions the unit cube into a K-ary tree of cells (here: thirds of the cell's widest
side, so the middle child keeps its parent's centre and value). Each sweep walks the depths
``0..h_max(n)`` and expands, at every depth, the leaf with the highest value if it beats every
leaf expanded at a shallower depth in this sweep: many cells are refined at once, one per
scale, without knowing the function's smoothness. ``h_max(n) = ceil(sqrt(n))`` after ``n``
evaluated cells (Munos' choice for unknown smoothness).

Integer and log-scaled dimensions: the tree lives in the unit cube of
:class:`~distillery.search.space.Space`, which maps a centre to the value (log scale, rounded
integers). A cell whose integer side holds a single value is not split along it, and a cell with
no side left to split is never expanded; two cells that round to the same configuration are one
experiment (the sampler reuses the first value, no trial is run twice).

:class:`SOOSampler` drives an Optuna study: it rebuilds (replays) the tree from the study's
finished trials, so a resumed or shared study continues where it was, and proposes the next
centre nobody has evaluated. With several workers a centre being evaluated elsewhere counts,
for the moment, as the worst value seen so far (the tree is replayed with the true value once
it is in), so workers spread over different cells.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from distillery.search.space import Params, Space

logger = logging.getLogger(__name__)

# send() a value for every yielded unit point; the generator returns when the tree is exhausted
Search = Generator[np.ndarray, float, None]


@dataclass(eq=False)
class Cell:
    """A box of the unit cube and the value assigned to its centre."""

    lo: np.ndarray  # (d,)
    hi: np.ndarray  # (d,)
    depth: int
    value: float = -math.inf
    evaluated: bool = True
    """False when BaMSOO assigned a GP bound instead of evaluating the centre."""

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2


class SOO:
    """The tree search as a generator: ``run()`` yields unit points, receives their values
    (higher is better)."""

    def __init__(self, space: Space, k: int = 3):
        if k < 2:
            raise ValueError(f"SOO needs k >= 2 children per split, got {k}")
        self.space = space
        self.k = k
        self.n_nodes = 0
        self.best = -math.inf
        self.points: list[np.ndarray] = []  # evaluated centres
        self.values: list[float] = []

    def h_max(self) -> int:
        return math.ceil(math.sqrt(max(self.n_nodes, 1)))

    def split_dim(self, cell: Cell) -> int | None:
        """Widest side that still holds more than one value, or None."""
        widths = [
            (cell.hi[i] - cell.lo[i], -i) for i, d in enumerate(self.space.dims)
            if d.distinct(cell.lo[i], cell.hi[i])
        ]
        return -max(widths)[1] if widths else None

    def children(self, cell: Cell, dim: int) -> list[Cell]:
        step = (cell.hi[dim] - cell.lo[dim]) / self.k
        out = []
        for j in range(self.k):
            lo, hi = cell.lo.copy(), cell.hi.copy()
            lo[dim] = cell.lo[dim] + j * step
            hi[dim] = cell.hi[dim] if j == self.k - 1 else lo[dim] + step
            out.append(Cell(lo, hi, cell.depth + 1))
        return out

    def evaluate(self, cell: Cell) -> Search:
        """Assign the cell its value: SOO always evaluates the centre."""
        cell.value = yield cell.center
        cell.evaluated = True
        self.record(cell)

    def record(self, cell: Cell) -> None:
        self.n_nodes += 1
        if cell.evaluated:
            self.points.append(cell.center)
            self.values.append(cell.value)
            self.best = max(self.best, cell.value)

    def run(self) -> Search:
        d = len(self.space)
        root = Cell(np.zeros(d), np.ones(d), 0)
        yield from self.evaluate(root)
        leaves = [root]
        while True:
            open_ = [(c, dim) for c in leaves if (dim := self.split_dim(c)) is not None]
            if not open_:
                return  # every cell is down to a single configuration
            cap = max(self.h_max(), min(c.depth for c, _ in open_))
            v_max = -math.inf
            for h in range(cap + 1):
                at_h = [(c, dim) for c, dim in open_ if c.depth == h]
                if not at_h:
                    continue
                cell, dim = max(at_h, key=lambda cd: cd[0].value)  # first of ties
                if cell.value < v_max:
                    continue
                v_max = cell.value
                leaves.remove(cell)
                for child in self.children(cell, dim):
                    if np.allclose(child.center, cell.center):
                        child.value, child.evaluated = cell.value, cell.evaluated
                    else:
                        yield from self.evaluate(child)
                    leaves.append(child)


class SOOSampler(BaseSampler):
    """Optuna sampler running :class:`SOO` (or a subclass) over ``space``; see the module
    docstring for how it replays the study."""

    algorithm: type[SOO] = SOO

    def __init__(self, space: Space, k: int = 3, seed: int | None = None):
        self.space = space
        self.k = k
        self._fallback = RandomSampler(seed=seed)
        self._reset()

    def _reset(self) -> None:
        self._search: Search | None = None
        self._pending: np.ndarray | None = None
        self._fed: dict[tuple[float, ...], tuple[float, bool]] = {}  # key -> (value, was a lie)
        self.exhausted = False

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.space.distributions()

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, float | int]:
        if not search_space:
            return {}
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        done, running = {}, set()
        for t in study.get_trials(deepcopy=False):
            if set(t.params) != set(self.space.names) or t.number == trial.number:
                continue
            if t.state == TrialState.COMPLETE:
                done.setdefault(self.space.key(t.params), sign * float(t.value))
            elif t.state == TrialState.RUNNING:
                running.add(self.space.key(t.params))
        params = self._next(done, running)
        if params is None:
            if not self.exhausted:
                logger.warning("%s: every cell is a single configuration; sampling at random",
                               type(self).__name__)
                self.exhausted = True
            return {}  # falls back to sample_independent
        return params

    def _stale(self, done: dict, running: set) -> bool:
        for k, (v, lie) in self._fed.items():
            if (not lie and done.get(k) != v) or (lie and k not in running):
                return True
        return False

    def _next(self, done: dict, running: set) -> Params | None:
        if self._search is None or self._stale(done, running):
            self._reset()
            self._search = self.algorithm(self.space, self.k).run()
            self._pending = next(self._search)
        lie = min(done.values()) if done else 0.0
        x = self._pending
        while x is not None:
            params = self.space.from_unit(x)
            k = self.space.key(params)
            if k in done:
                self._fed[k] = (done[k], False)
            elif k in running:
                self._fed[k] = (lie, True)
            else:
                self._pending = x
                return params
            try:
                x = self._search.send(self._fed[k][0])
            except StopIteration:
                x = None
        self._pending = None
        return None

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str,
        param_distribution: BaseDistribution,
    ) -> float | int:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)


def make(space: Space, seed: int, n_initial: int) -> tuple[optuna.samplers.BaseSampler, list]:
    """Registry entry: SOO with K = 3 (as in the HPO study); needs no initial design."""
    return SOOSampler(space, k=3, seed=seed), []
