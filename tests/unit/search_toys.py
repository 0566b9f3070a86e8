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


KILL_POINTS = ("trial", "ask", "tell", "idle")
"""Where :class:`Pausing` stops for its kill: inside the objective; right after ``ask`` (the
trial is running, no heartbeat recorded yet); before ``tell`` (the objective has returned, its
value is not stored); before ``ask`` (between trials: no trial held)."""

NAS_SPACE = {  # 24 x 24 x 7 x 8 = 32,256 genomes, all valid: 16 proposals never repeat
    "num_hidden_layers": list(range(1, 25)),
    "hidden_size": list(range(64, 1537, 64)),
    "num_attention_heads": [1, 2, 4, 8, 16, 32, 64],
    "intermediate_size": [128, 256, 512, 768, 1024, 1536, 2048, 3072],
}


@dataclass
class Pausing:
    """A worker for the kill tests: ``delay``-second trials of Branin (``search="hpo"``) or of
    a NAS search over :data:`NAS_SPACE` (``"nas"``: :func:`distillery.nas.search`, random
    strategy), events appended to ``log`` as ``<time> <event> <worker> <key>`` lines (event:
    ``ready``, ``asked``, ``start``, ``end``, ``told``, ``pause``). After its first told trial
    it stops for good at ``pause`` (one of :data:`KILL_POINTS`; empty: never), to be killed."""

    storage: str
    study: str
    n_trials: int
    log: str
    pause: str = ""
    delay: float = 0.3
    heartbeat: tuple[int, int] = runner.HEARTBEAT
    search: str = "hpo"
    gate: str = ""
    """A file to wait for (after writing a ``ready`` event) before the first trial, so that
    workers whose imports take different times start together."""

    def __call__(self, worker: int) -> None:
        self.worker, self.told = worker, 0
        if self.search == "nas":
            from distillery import nas

            study = runner.load(self.storage, self.study, heartbeat=self.heartbeat)
            self._hook(study, nas.GenomeSpace(NAS_SPACE).key)
            self._wait()
            # one seed for all workers: trial n proposes the same genome whoever asks for it
            nas.search(NAS_SPACE, self._genome, "random", self.n_trials, 1, 0, study=study)
            return
        study, _ = runner.open_study(self.storage, self.study, "random", BRANIN, worker,
                                     heartbeat=self.heartbeat)
        self._hook(study, BRANIN.key)
        self._wait()
        runner.optimize(study, BRANIN, self._branin, self.n_trials, desc=None)

    def _wait(self) -> None:
        if self.gate:
            self._write("ready", "-")
            while not os.path.exists(self.gate):
                time.sleep(0.02)

    def _branin(self, p: dict) -> tuple[float, dict]:
        self._trial(BRANIN.key(p))
        return branin(p), {"pid": os.getpid()}

    def _genome(self, genome: dict) -> tuple[float, dict]:
        from distillery import nas

        self._trial(nas.key(genome))
        return float(sum(genome.values())), {"pid": os.getpid()}

    def _trial(self, key: tuple) -> None:
        self._write("start", key)
        time.sleep(self.delay)
        self._stop("trial", key)
        self._write("end", key)

    def _hook(self, study, key) -> None:
        """Log and stop around ``study.ask`` / ``study.tell`` (what :func:`runner.optimize`
        calls)."""
        ask, tell = study.ask, study.tell

        def asking(*args, **kwargs):
            self._stop("idle", "-")
            trial = ask(*args, **kwargs)
            self._write("asked", key(trial.params))
            self._stop("ask", key(trial.params))
            return trial

        def telling(trial, *args, **kwargs):
            self._stop("tell", key(trial.params))
            out = tell(trial, *args, **kwargs)
            self.told += 1
            self._write("told", key(trial.params))
            return out

        study.ask, study.tell = asking, telling

    def _stop(self, point: str, key) -> None:
        if self.pause == point and self.told:
            self._write("pause", key)
            time.sleep(600)

    def _write(self, event: str, key) -> None:
        with open(self.log, "a") as f:
            f.write(f"{time.time():.3f} {event} {self.worker} {key}\n")
            f.flush()
            os.fsync(f.fileno())
