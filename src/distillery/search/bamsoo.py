"""BaMSOO: Bayesian Multi-Scale Optimistic Optimization (Z. Wang, B. Shakibi, L. Jin,
N. de Freitas, AISTATS 2014).

The tree search of :mod:`distillery.search.soo`, with a Gaussian process over the centres
evaluated so far deciding whether a new cell is worth an evaluation: a centre is evaluated
only when its upper confidence bound ``mu + B_N * sigma`` reaches the best value seen;
otherwise the cell gets its lower bound ``mu - B_N * sigma`` as value and costs nothing.
``B_N = sqrt(2 log(pi^2 N^2 / (6 eta)))`` after ``N`` cells (the paper's schedule, ``eta``
= 0.05). The evaluation budget thus goes to cells that can still win, which is what the HPO
study this project comes from found: BaMSOO wasted far fewer evaluations than plain SOO.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna

from distillery.search.soo import SOO, Cell, Search, SOOSampler
from distillery.search.space import Space


class GP:
    """Exact GP regression (scikit-learn) on unit-cube inputs: Matern 5/2 with one length
    scale per dimension, a constant amplitude and a small noise term, fitted by maximum
    likelihood with a fixed random state, so replaying a study refits the same model."""

    def __init__(self, points: list[np.ndarray], values: list[float]):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        d = len(points[0])
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * Matern(length_scale=np.full(d, 0.3), length_scale_bounds=(1e-2, 1e1), nu=2.5)
                  + WhiteKernel(1e-4, (1e-8, 1e-1)))
        self.model = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1,
                                              random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at the length-scale bounds
            self.model.fit(np.stack(points), np.asarray(values))

    def predict(self, x: np.ndarray) -> tuple[float, float]:
        mu, sd = self.model.predict(x[None, :], return_std=True)
        return float(mu[0]), float(sd[0])


class BaMSOO(SOO):
    eta = 0.05
    min_points = 2
    """Below this many evaluated centres the GP says nothing: evaluate (plain SOO)."""

    def __init__(self, space: Space, k: int = 3):
        super().__init__(space, k)
        self._gp: GP | None = None
        self._gp_n = -1
        self.n_skipped = 0

    def beta(self) -> float:
        n = self.n_nodes + 1
        return math.sqrt(2 * math.log(math.pi ** 2 * n ** 2 / (6 * self.eta)))

    def evaluate(self, cell: Cell) -> Search:
        if len(self.values) >= self.min_points:
            if self._gp_n != len(self.values):  # refit only after a new evaluation
                self._gp, self._gp_n = GP(self.points, self.values), len(self.values)
            mu, sd = self._gp.predict(cell.center)
            b = self.beta()
            if mu + b * sd < self.best:
                cell.value, cell.evaluated = mu - b * sd, False
                self.n_skipped += 1
                self.record(cell)
                return
        yield from super().evaluate(cell)


class BaMSOOSampler(SOOSampler):
    algorithm = BaMSOO


def make(space: Space, seed: int, n_initial: int) -> tuple[optuna.samplers.BaseSampler, list]:
    """Registry entry: BaMSOO with K = 3; needs no initial design."""
    return BaMSOOSampler(space, k=3, seed=seed), []
