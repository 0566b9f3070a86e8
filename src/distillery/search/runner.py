"""Trials on Optuna storage: every sampler, NAS and HPO alike, runs through :func:`optimize`.

* **Storage.** A journal file (default; one machine, any number of processes, file-locked) or
  any RDB URL Optuna accepts (``postgresql://…``, ``mysql+pymysql://…``, ``sqlite:///…``) for
  workers on several machines. Every finished trial is in the storage the moment it ends.
* **Resume.** A study's name is a hash of everything that makes its trials comparable (search
  space, fidelity, data, seed; not the number of trials), so rerunning a killed stage reopens the
  same study and only runs the trials still missing; raising ``n_trials`` extends it, changing
  the space opens a new one. Trials left ``RUNNING`` by a killed process are marked failed when
  the stage starts (journal) or by Optuna's heartbeat (RDB).
* **Duplicates.** A configuration that already has a finished trial is not run again: the new
  trial is told the same value and marked ``cached`` (SOO cells rounding to one integer
  configuration, evolution re-proposing a genome).
* **Pruning.** An objective that takes a ``report`` argument gets ``report(value, step)``:
  it records an intermediate score and raises ``optuna.TrialPruned`` when the study's pruner
  (:mod:`~distillery.search.pruners`) stops the trial, which is then stored ``PRUNED`` with
  its last reported value. Pruned trials count toward ``n_trials``; only finished ones can win.
* **Workers.** :func:`run_workers` starts processes that each call :func:`optimize` on the same
  study; the storage is the only thing they share (Optuna's own distributed mode).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from distillery.search.space import Params, Space

logger = logging.getLogger(__name__)

# params -> score, or (score, extra values stored as trial user attributes); a multi-objective
# study takes a list of values in place of the score
Objective = Callable[..., "float | tuple[float | list[float], dict[str, Any]]"]

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
"""States of a trial that ran: it counts toward ``n_trials`` and is never rerun."""


def storage(spec: str) -> optuna.storages.BaseStorage:
    """Open ``spec``: an RDB URL (contains ``://``) or the path of a journal file."""
    if "://" in spec:
        return optuna.storages.RDBStorage(spec, heartbeat_interval=30, grace_period=120)
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(spec))


def study_name(prefix: str, fingerprint: dict[str, Any]) -> str:
    """``prefix-<hash of fingerprint>``: same fingerprint, same study."""
    blob = json.dumps(fingerprint, sort_keys=True, default=str).encode()
    return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:12]}"


def open_study(spec: str, name: str, sampler: str, space: Space, seed: int,
               n_initial: int = 0, pruner: str = "none",
               n_steps: int = 1) -> tuple[optuna.Study, list[Params]]:
    """Create or reopen study ``name`` on storage ``spec`` with the registered ``sampler`` and
    ``pruner`` (for trials reporting up to ``n_steps`` intermediate values).

    A reopened study's sampler is seeded ``seed + 7919 * (trials so far)``: a resumed random
    or model-based sampler must not replay the proposals of the first run (they would all be
    duplicates), and the same run resumed the same way proposes the same trials.

    Returns:
        The study and the sampler's initial design (enqueue it with :func:`prepare`).
    """
    from distillery.search import make_sampler
    from distillery.search.pruners import make_pruner

    study = load(spec, name)
    n = len(study.get_trials(deepcopy=False))
    study.sampler, design = make_sampler(sampler, space, seed + 7919 * n, n_initial)
    study.pruner = make_pruner(pruner, sampler, n_steps)
    return study, design


def load(spec: str, name: str, directions: tuple[str, ...] = ("maximize",)) -> optuna.Study:
    """Create or reopen study ``name`` on storage ``spec``; the caller sets ``study.sampler``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=name, storage=storage(spec),
                               directions=list(directions), load_if_exists=True)


def prepare(study: optuna.Study, design: list[Params], journal: bool) -> dict[str, int]:
    """Make a (re)opened study ready for workers; call once, before they start.

    Fails trials a killed run left ``RUNNING`` (journal: nobody else can be running them;
    RDB: only those whose heartbeat stopped) and re-queues the design points they held;
    enqueues the initial design when the study is new.

    Returns:
        Counts of finished trials found and stale trials failed.
    """
    trials = study.get_trials(deepcopy=False)
    stale = [t for t in trials if t.state == TrialState.RUNNING]
    if journal:
        for t in stale:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    else:
        optuna.storages.fail_stale_trials(study)
        now_failed = {t.number for t in study.get_trials(deepcopy=False)
                      if t.state == TrialState.FAIL}
        stale = [t for t in stale if t.number in now_failed]
    for t in stale:
        if "fixed_params" in t.system_attrs:
            study.enqueue_trial(t.system_attrs["fixed_params"], skip_if_exists=False)
    if not trials:
        for point in design:
            study.enqueue_trial(point)
    finished = sum(t.state in DONE for t in trials)
    if finished or stale:
        logger.info("study %s: resuming with %d finished trials (%d left running by a "
                    "killed run, failed and re-queued)", study.study_name, finished, len(stale))
    return {"finished": finished, "stale": len(stale)}


def optimize(study: optuna.Study, space: Any, objective: Objective, n_trials: int,
             desc: str | None = "trials") -> None:
    """Ask/tell until the study holds ``n_trials`` finished or pruned trials (counting those of
    other workers, running ones included, so that workers stop together).

    ``space``: a :class:`Space` or anything with ``names``, ``distributions()`` and
    ``key(params)`` (NAS's genome space)."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state in DONE]
    bar = tqdm(total=n_trials, initial=min(len(done), n_trials), desc=desc, disable=desc is None)
    while True:
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state == TrialState.COMPLETE]
        ran = sum(t.state in (*DONE, TrialState.RUNNING) for t in trials)
        if ran >= n_trials:
            break
        trial = study.ask(space.distributions())
        k = space.key(trial.params)
        prior = next((t for t in finished if set(t.params) == set(space.names)
                      and space.key(t.params) == k), None)
        if prior is not None:
            for name, v in prior.user_attrs.items():
                if name != "cached":
                    trial.set_user_attr(name, v)
            trial.set_user_attr("cached", prior.number)
            study.tell(trial, prior.values)
            logger.info("trial %d = trial %d %s: %s (not rerun)", trial.number, prior.number,
                        trial.params, prior.values)
        else:
            _run(study, trial, objective)
        bar.update()
    bar.close()


def _run(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> None:
    def report(value: float, step: int) -> None:
        trial.report(float(value), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (best so far {value:.4f})")

    kwargs = {"report": report} if "report" in inspect.signature(objective).parameters else {}
    try:
        out = objective(dict(trial.params), **kwargs)
    except optuna.TrialPruned as e:
        study.tell(trial, state=TrialState.PRUNED)
        logger.info("trial %d %s: %s", trial.number, trial.params, e)
        return
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    value, extra = out if isinstance(out, tuple) else (out, {})
    for name, v in extra.items():
        trial.set_user_attr(name, v)
    values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"objective returned {value} for {trial.params}")
    study.tell(trial, values if len(values) > 1 else values[0])
    logger.info("trial %d %s: %s", trial.number, trial.params, values)


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
    processes (``target`` must pickle: a module-level function or a dataclass instance)."""
    if workers <= 1:
        target(0)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(i,), name=f"worker-{i}") for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{', '.join(failed)} failed (see the log above)")


def worker_threads(workers: int) -> int:
    """Torch threads per worker so that workers together use every core once."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))
