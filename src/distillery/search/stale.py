"""Running trials that never recorded a heartbeat: the one case Optuna's stale check misses.

On an RDB storage a trial is ``RUNNING`` from the moment ``ask`` creates it (or takes it from
the queue), but its first heartbeat comes only when the worker's heartbeat thread starts, after
the sampler has proposed its parameters. A worker killed in between leaves a trial that
``optuna.storages.fail_stale_trials`` never fails (it skips trials without a heartbeat), and the
other workers, counting it as running elsewhere, would wait for it forever.

:class:`Silent` finds such trials and fails one once this process has seen it without a
heartbeat for the storage's grace period, timed on this process's own clock (the database's
timestamps come from the clocks of other machines). A live worker's trial is silent only while
its sampler works, far less than a grace period.
"""

from __future__ import annotations

import time

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState


class Silent:
    """Trials of a study running without a heartbeat record, and when this process first saw
    each; :meth:`fail` fails those silent for longer than ``grace`` seconds."""

    def __init__(self, grace: float):
        self.grace = grace
        self.first_seen: dict[int, float] = {}

    def fail(self, study: optuna.Study) -> list[FrozenTrial]:
        """Fail (``FAIL``) the trials silent past the grace period; return them as failed
        (a trial another worker finished or failed meanwhile is left alone)."""
        now = time.monotonic()
        silent = unbeaten(study)
        self.first_seen = {i: self.first_seen.get(i, now) for i in silent}
        failed = []
        for trial_id, seen in list(self.first_seen.items()):
            if now - seen <= self.grace:
                continue
            del self.first_seen[trial_id]
            try:
                if study._storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    failed.append(study._storage.get_trial(trial_id))
            except UpdateFinishedTrialError:  # another worker got there first
                pass
        return failed


def grace(study: optuna.Study) -> float | None:
    """Seconds without a heartbeat after which a running trial of ``study`` is stale (None: its
    storage records no heartbeats)."""
    if not is_heartbeat_enabled(study._storage):
        return None
    rdb = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache
    return getattr(rdb, "grace_period", None) or 2 * study._storage.get_heartbeat_interval()


def unbeaten(study: optuna.Study) -> set[int]:
    """Ids of the study's ``RUNNING`` trials that have no heartbeat record (RDB storages)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    rdb = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache
    trial, beat = models.TrialModel, models.TrialHeartbeatModel
    with _create_scoped_session(rdb.scoped_session) as session:
        rows = (session.query(trial.trial_id)
                .outerjoin(beat, beat.trial_id == trial.trial_id)
                .filter(trial.study_id == study._study_id, trial.state == TrialState.RUNNING,
                        beat.trial_heartbeat_id.is_(None))
                .all())
    return {row[0] for row in rows}
