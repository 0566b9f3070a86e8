"""Known test functions (maximised) and picklable toy workers for the search tests."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from distillery.search import Dim, Space, runner

BRANIN = Space((Dim("x1", -5.0, 10.0), Dim("x2", 0.0, 15.0)))
BRANIN_MAX = -0.397887  # at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475)
HARTMANN6 = Space(tuple(Dim(f"x{i}", 0.0, 1.0) for i in range(6)))
HARTMANN6_MAX = 3.32237

_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
               [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                      [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(p: dict) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return -((x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


def hartmann6(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(np.sum(_ALPHA * np.exp(-np.sum(_A * (x - _P) ** 2, axis=1))))


@dataclass
class SlowWorker:
    """Runs Branin trials that take ``delay`` seconds, logging ``start``/``end`` lines with
    the trial's key to ``log`` (one line per event, appended: survives kills)."""

    storage: str
    study: str
    sampler: str
    n_trials: int
    log: str
    delay: float = 0.2
    heartbeat: tuple[int, int] = runner.HEARTBEAT

    def __call__(self, worker: int) -> None:
        study, _ = runner.open_study(self.storage, self.study, self.sampler, BRANIN, worker, 2,
                                     heartbeat=self.heartbeat)

        def objective(p: dict) -> tuple[float, dict]:
            key = BRANIN.key(p)
            self._write(f"start {worker} {key}")
            time.sleep(self.delay)
            self._write(f"end {worker} {key}")
            return branin(p), {"pid": os.getpid()}

        runner.optimize(study, BRANIN, objective, self.n_trials, desc=None)

    def _write(self, line: str) -> None:
        with open(self.log, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class Sleeper:
    """A worker that writes its pid to ``<folder>/<worker>.pid``, then sleeps ``seconds``."""

    folder: str
    seconds: float = 120.0

    def __call__(self, worker: int) -> None:
        path = os.path.join(self.folder, f"{worker}.pid")
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        time.sleep(self.seconds)
