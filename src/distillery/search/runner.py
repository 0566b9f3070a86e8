"""Trials on Optuna storage: every sampler, NAS and HPO alike, runs through :func:`optimize`.

* **Storage.** A journal file (default; one machine, any number of processes, file-locked) or
  any RDB URL Optuna accepts (``postgresql://…``, ``mysql+pymysql://…``, ``sqlite:///…``) for
  workers on several machines, given as is or as ``env:NAME`` (the URL is read from environment
  variable ``NAME`` at run time, so its password stays out of ``params.yaml`` and ``dvc.lock``).
  Every finished trial is in the storage the moment it ends.
* **Resume.** A study's name is a hash of everything that makes its trials comparable (search
  space, fidelity, data, seed; not the number of trials), so rerunning a killed stage reopens the
  same study and only runs the trials still missing; raising ``n_trials`` extends it, changing
  the space opens a new one.
* **Dead workers.** Journal: trials left ``RUNNING`` by a killed process are failed, and their
  parameters re-queued, when the stage starts again (:func:`prepare`; nobody else can be
  running them). RDB: while a worker runs a trial, a thread records the trial's heartbeat every
  ``HEARTBEAT[0]`` seconds (Optuna does so only inside ``study.optimize``, which ask/tell does
  not use); before each ask, every worker fails the trials whose heartbeat is older than
  ``HEARTBEAT[1]`` seconds (``optuna.storages.fail_stale_trials``), and those it has seen
  running for as long with no heartbeat at all (:mod:`~distillery.search.stale`: a worker
  killed between ``ask`` and its first heartbeat), and re-queues their parameters, so a killed
  worker's trial is run again by a live one. A worker whose remaining trials are all running
  elsewhere waits for them to finish or go stale before it stops, so the study ends with
  exactly ``n_trials`` finished or pruned trials.
* **Duplicates.** A configuration that already has a finished trial is not run again: the new
  trial is told the same value and marked ``cached`` (SOO cells rounding to one integer
  configuration, evolution re-proposing a genome).
* **Pruning.** An objective that takes a ``report`` argument gets ``report(value, step)``:
  it records an intermediate score and raises ``optuna.TrialPruned`` when the study's pruner
  (:mod:`~distillery.search.pruners`) stops the trial, which is then stored ``PRUNED`` with
  its last reported value. Pruned trials count toward ``n_trials``; only finished ones can win.
* **Workers.** :func:`run_workers` starts processes that each call :func:`optimize` on the same
  study; the storage is the only thing they share (Optuna's own distributed mode). A worker
  dies with its parent (Linux: ``PR_SET_PDEATHSIG``; elsewhere a thread watching the parent),
  so a ``kill -9`` of the stage leaves none running.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from distillery.core.io import UserError
from distillery.search import stale
from distillery.search.space import Params, Space

logger = logging.getLogger(__name__)

# params -> score, or (score, extra values stored as trial user attributes); a multi-objective
# study takes a list of values in place of the score
Objective = Callable[..., "float | tuple[float | list[float], dict[str, Any]]"]

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
"""States of a trial that ran: it counts toward ``n_trials`` and is never rerun."""


HEARTBEAT = (30, 120)
"""RDB storages: seconds between heartbeats of a running trial, and seconds without one after
which another worker fails the trial and re-queues its parameters."""

ENV_PREFIX = "env:"


def resolve(spec: str) -> str:
    """``env:NAME`` -> the value of environment variable ``NAME``; any other ``spec`` as is.

    Raises:
        UserError: ``NAME`` is not set (or empty).
    """
    if not spec.startswith(ENV_PREFIX):
        return spec
    name = spec[len(ENV_PREFIX):]
    value = os.environ.get(name, "")
    if not value:
        raise UserError(f"storage {spec!r}: environment variable {name} is not set; export it "
                        f"with the database URL (e.g. {name}=postgresql://user:pw@host/db) on "
                        "every machine that runs the stage")
    return value


def is_journal(spec: str) -> bool:
    """Whether ``spec`` (after :func:`resolve`) names a journal file rather than a database."""
    return "://" not in resolve(spec)


def storage(spec: str, heartbeat: tuple[int, int] = HEARTBEAT) -> optuna.storages.BaseStorage:
    """Open ``spec``: an RDB URL (contains ``://``), ``env:NAME`` holding one, or the path of a
    journal file. ``heartbeat``: (interval, grace period) in seconds, RDB only."""
    spec = resolve(spec)
    if "://" in spec:
        interval, grace = heartbeat
        with _quiet():
            return optuna.storages.RDBStorage(spec, heartbeat_interval=interval,
                                              grace_period=grace,
                                              heartbeat_stale_trial_callback=_requeue)
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(spec))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Optuna's ``ExperimentalWarning`` on its heartbeat API (there since v2.9), and
    its warning that heartbeats are meant for ``study.optimize`` (this module records them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
        yield


def _fail_stale(study: optuna.Study, silent: stale.Silent | None = None) -> None:
    """Fail the trials of ``study`` whose heartbeat stopped (the storage's callback,
    :func:`_requeue`, re-queues each), and with ``silent`` those that never had one (their
    worker died between ``ask`` and its first heartbeat); a no-op without heartbeats (journal,
    in memory)."""
    with _quiet():
        optuna.storages.fail_stale_trials(study)
    for trial in silent.fail(study) if silent is not None else []:
        _requeue(study, trial)


def study_name(prefix: str, fingerprint: dict[str, Any]) -> str:
    """``prefix-<hash of fingerprint>``: same fingerprint, same study."""
    blob = json.dumps(fingerprint, sort_keys=True, default=str).encode()
    return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:12]}"


def open_study(spec: str, name: str, sampler: str, space: Space, seed: int,
               n_initial: int = 0, pruner: str = "none", n_steps: int = 1,
               heartbeat: tuple[int, int] = HEARTBEAT) -> tuple[optuna.Study, list[Params]]:
    """Create or reopen study ``name`` on storage ``spec`` with the registered ``sampler`` and
    ``pruner`` (for trials reporting up to ``n_steps`` intermediate values); ``heartbeat`` as in
    :func:`storage`.

    A reopened study's sampler is seeded ``seed + 7919 * (trials so far)``: a resumed random
    or model-based sampler must not replay the proposals of the first run (they would all be
    duplicates), and the same run resumed the same way proposes the same trials.

    Returns:
        The study and the sampler's initial design (enqueue it with :func:`prepare`).
    """
    from distillery.search import make_sampler
    from distillery.search.pruners import make_pruner

    study = load(spec, name, heartbeat=heartbeat)
    n = len(study.get_trials(deepcopy=False))
    study.sampler, design = make_sampler(sampler, space, seed + 7919 * n, n_initial)
    study.pruner = make_pruner(pruner, sampler, n_steps)
    return study, design


def load(spec: str, name: str, directions: tuple[str, ...] = ("maximize",),
         heartbeat: tuple[int, int] = HEARTBEAT) -> optuna.Study:
    """Create or reopen study ``name`` on storage ``spec`` (``heartbeat`` as in
    :func:`storage`); the caller sets ``study.sampler``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=name, storage=storage(spec, heartbeat),
                               directions=list(directions), load_if_exists=True)


def prepare(study: optuna.Study, design: list[Params], journal: bool) -> dict[str, int]:
    """Make a (re)opened study ready for workers; call once, before they start.

    Fails trials a killed run left ``RUNNING`` (journal: nobody else can be running them;
    RDB: only those whose heartbeat stopped) and re-queues their parameters; enqueues the
    initial design when the study is new.

    Returns:
        Counts of finished trials found and stale trials failed.
    """
    trials = study.get_trials(deepcopy=False)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if journal:
        for t in running:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            _requeue(study, t)
        stale = len(running)
    else:  # the storage's callback (_requeue) re-queues what this call fails
        _fail_stale(study)
        failed = {t.number for t in study.get_trials(deepcopy=False)
                  if t.state == TrialState.FAIL}
        stale = sum(t.number in failed for t in running)
    if not trials:
        for point in design:
            study.enqueue_trial(point)
    finished = sum(t.state in DONE for t in trials)
    if finished or stale:
        logger.info("study %s: resuming with %d finished trials (%d left running by a "
                    "killed run, failed and re-queued)", study.study_name, finished, stale)
    return {"finished": finished, "stale": stale}


def _requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue the parameters of ``trial``, failed because its worker died (the storage's
    ``heartbeat_stale_trial_callback``: runs once per trial, in the worker that failed it)."""
    params = trial.system_attrs.get("fixed_params") or trial.params
    if params:
        study.enqueue_trial(dict(params), skip_if_exists=False)
    logger.warning("trial %d %s: its worker died; failed and re-queued", trial.number, params)


def optimize(study: optuna.Study, space: Any, objective: Objective, n_trials: int,
             desc: str | None = "trials") -> None:
    """Ask/tell until the study holds ``n_trials`` finished or pruned trials (counting those of
    other workers, so that workers stop together).

    On an RDB storage each trial's heartbeat is recorded while it runs, stale trials of dead
    workers are failed and re-queued before each ask, and a worker waits for trials running
    elsewhere before it stops (one of them may die). A trial asked for by two workers at once
    beyond ``n_trials`` is failed before it runs (marked ``surplus``), its parameters re-queued.

    ``space``: a :class:`Space` or anything with ``names``, ``distributions()`` and
    ``key(params)`` (NAS's genome space)."""
    interval = (study._storage.get_heartbeat_interval()
                if is_heartbeat_enabled(study._storage) else None)
    silent = stale.Silent(stale.grace(study) or 0) if interval is not None else None
    done = [t for t in study.get_trials(deepcopy=False) if t.state in DONE]
    bar = tqdm(total=n_trials, initial=min(len(done), n_trials), desc=desc, disable=desc is None)
    while True:
        if interval is not None:
            _fail_stale(study, silent)
        trials = study.get_trials(deepcopy=False)
        n_done = sum(t.state in DONE for t in trials)
        n_running = sum(t.state == TrialState.RUNNING for t in trials)
        if n_done >= n_trials:
            break
        if n_done + n_running >= n_trials:
            if interval is None:  # journal: a dead process's trial waits for the next run
                break
            time.sleep(interval)  # until the trials running elsewhere end or go stale
            continue
        with _quiet():
            trial = study.ask(space.distributions())
        with get_heartbeat_thread(trial._trial_id, study._storage):
            if _surplus(study, trial, n_trials):
                continue
            if not _cached(study, trial, space, trials):
                _run(study, trial, objective)
        bar.update()
    bar.close()


def _surplus(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Fail ``trial`` (and re-queue its parameters) if ``n_trials`` trials created before it
    already ran or are running: another worker asked at the same moment."""
    before = sum(t.state in (*DONE, TrialState.RUNNING) and t._trial_id < trial._trial_id
                 for t in study.get_trials(deepcopy=False))
    if before < n_trials:
        return False
    fixed = study._storage.get_trial(trial._trial_id).system_attrs.get("fixed_params")
    trial.set_user_attr("surplus", True)
    study.tell(trial, state=TrialState.FAIL)
    if fixed:
        study.enqueue_trial(fixed, skip_if_exists=False)
    return True


def _cached(study: optuna.Study, trial: optuna.Trial, space: Any,
            trials: list[FrozenTrial]) -> bool:
    """Tell ``trial`` the values of a finished trial with the same configuration, if any."""
    k = space.key(trial.params)
    prior = next((t for t in trials if t.state == TrialState.COMPLETE
                  and set(t.params) == set(space.names) and space.key(t.params) == k), None)
    if prior is None:
        return False
    for name, v in prior.user_attrs.items():
        if name != "cached":
            trial.set_user_attr(name, v)
    trial.set_user_attr("cached", prior.number)
    study.tell(trial, prior.values)
    logger.info("trial %d = trial %d %s: %s (not rerun)", trial.number, prior.number,
                trial.params, prior.values)
    return True


def _run(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> None:
    def report(value: float, step: int) -> None:
        trial.report(float(value), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (best so far {value:.4f})")

    kwargs = {"report": report} if "report" in inspect.signature(objective).parameters else {}
    try:
        out = objective(dict(trial.params), **kwargs)
    except optuna.TrialPruned as e:
        _tell(study, trial, state=TrialState.PRUNED)
        logger.info("trial %d %s: %s", trial.number, trial.params, e)
        return
    except UpdateFinishedTrialError:  # report() on a trial another worker failed
        _tell(study, trial)
        return
    except BaseException:
        _tell(study, trial, state=TrialState.FAIL)
        raise
    value, extra = out if isinstance(out, tuple) else (out, {})
    values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"objective returned {value} for {trial.params}")
    if _tell(study, trial, values if len(values) > 1 else values[0], extra=extra):
        logger.info("trial %d %s: %s", trial.number, trial.params, values)


def _tell(study: optuna.Study, trial: optuna.Trial, values: Any = None,
          state: TrialState | None = None, extra: dict[str, Any] | None = None) -> bool:
    """``study.tell`` unless another worker already failed the trial (its heartbeat was late
    past the grace period, and its parameters were re-queued): then log it and return False."""
    if study._storage.get_trial(trial._trial_id).state.is_finished():
        seconds = stale.grace(study)
        why = f"no heartbeat for {seconds} s" if seconds else "a rerun of the stage"
        logger.warning("trial %d %s was failed by another worker (%s) and re-queued; its "
                       "result is dropped", trial.number, trial.params, why)
        return False
    for name, v in (extra or {}).items():
        trial.set_user_attr(name, v)
    study.tell(trial, values, state=state)
    return True


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished trials in the order they were created."""
    return sorted(_finished(study), key=lambda t: t.number)


def ran_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished and pruned trials in the order they were created."""
    return sorted((t for t in study.get_trials(deepcopy=False) if t.state in DONE),
                  key=lambda t: t.number)


def run_workers(target: Callable[[int], None], workers: int) -> None:
    """``target(i)`` for ``i < workers``: in this process for one worker, else in spawned
    processes (``target`` must pickle: a module-level function or a dataclass instance) that
    exit when this process dies, even by ``SIGKILL``."""
    if workers <= 1:
        target(0)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(target, i, os.getpid()), name=f"worker-{i}")
             for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{', '.join(failed)} failed (see the log above)")


def _worker_main(target: Callable[[int], None], i: int, parent: int) -> None:
    """A spawned worker: die with ``parent``, then run ``target(i)``."""
    die_with_parent(parent)
    target(i)


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Make this process exit when process ``parent`` (the one that started it) dies: the
    kernel sends SIGKILL on Linux (``prctl(PR_SET_PDEATHSIG)``), elsewhere a daemon thread
    checks the parent's pid every second."""
    if sys.platform == "linux":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def worker_threads(workers: int) -> int:
    """Torch threads per worker so that workers together use every core once."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))
