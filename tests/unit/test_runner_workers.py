"""Search workers that die: a SIGKILLed worker's trial on PostgreSQL and on the journal, workers
whose parent is killed, and the storage named by an environment variable.

The PostgreSQL cases run on a real server (``pg_url``: ``scripts/postgres.sh``), over TCP.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from distillery.core.io import UserError
from distillery.search import runner
from tests.unit.search_toys import BRANIN, SlowWorker

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = (1, 5)
"""Seconds between heartbeats and before a silent trial is failed: short, for the tests, with
a grace period that a loaded 2-core machine does not exceed by starving a live worker."""


def spawn(code: str) -> subprocess.Popen:
    """A Python process running ``code`` from the repository root (imports ``tests.…``)."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def events(log: Path) -> list[tuple[str, str, str]]:
    """``(start|end, worker, key)`` per line of a :class:`SlowWorker` log."""
    return [tuple(line.split(" ", 2)) for line in log.read_text().splitlines()]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(params=["journal", "postgresql"])
def storage(request, tmp_path) -> str:
    if request.param == "journal":
        return str(tmp_path / "s.journal")
    return request.getfixturevalue("pg_url")


def test_killed_worker_trial_is_failed_requeued_and_run_once_more(storage, tmp_path):
    """Two worker processes on one study; one is SIGKILLed mid-trial. PostgreSQL: the live
    worker fails the dead one's trial once its heartbeat is 5 s old, re-runs its parameters and
    ends the study alone. Journal (no heartbeat): the live worker stops, the rerun of the stage
    fails and re-queues the trial. Either way: exactly ``n`` finished trials, none trained
    twice, the killed configuration trained again, no other lost."""
    n, log = 8, tmp_path / "events.log"
    worker = SlowWorker(storage, "s", "random", n, str(log), 0.5, HEARTBEAT)
    study, design = runner.open_study(storage, "s", "random", BRANIN, 0, heartbeat=HEARTBEAT)
    runner.prepare(study, design, journal=runner.is_journal(storage))
    code = "from tests.unit.search_toys import SlowWorker; SlowWorker(*{!r})({})"
    procs = [spawn(code.format(dataclasses.astuple(worker), i)) for i in range(2)]

    def mid_trial() -> bool:  # worker 1 finished a trial and is running the next one
        mine = [e for e in events(log) if e[1] == "1"] if log.exists() else []
        return any(e[0] == "end" for e in mine) and mine[-1][0] == "start"

    try:
        wait_for(mid_trial, 120, "worker 1 to be mid-trial")
        procs[1].kill()
        procs[1].wait()
        killed = [e for e in events(log) if e[1] == "1"][-1][2]
        assert procs[0].wait(timeout=60) == 0
    finally:
        for proc in procs:
            proc.kill()
    alone = runner.finished_trials(runner.load(storage, "s", heartbeat=HEARTBEAT))
    if runner.is_journal(storage):  # the stage's rerun
        assert len(alone) == n - 1
        study, _ = runner.open_study(storage, "s", "random", BRANIN, 0, heartbeat=HEARTBEAT)
        assert runner.prepare(study, design, journal=True)["stale"] == 1
        worker(0)
    else:  # the live worker did it all
        assert len(alone) == n
        assert ("end", "0", killed) in events(log)

    ends = [key for kind, _, key in events(log) if kind == "end"]
    starts = Counter(key for kind, _, key in events(log) if kind == "start")
    assert len(ends) == len(set(ends)) == n and killed in ends
    assert starts[killed] == 2 and all(c == 1 for k, c in starts.items() if k != killed)
    trials = runner.load(storage, "s").get_trials(deepcopy=False)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n
    failed = [t for t in trials if t.state == TrialState.FAIL and "surplus" not in t.user_attrs]
    assert [str(BRANIN.key(t.params)) for t in failed] == [killed]


def test_a_trial_failed_by_another_worker_is_dropped_and_the_search_goes_on(tmp_path):
    """A live worker whose heartbeat came too late finds its trial failed (by the worker that
    re-queued it): its result is dropped, not told, and the study still fills up."""
    study, _ = runner.open_study(str(tmp_path / "s.journal"), "s", "random", BRANIN, 0)
    calls = []

    def objective(p: dict) -> float:
        calls.append(p)
        if len(calls) == 1:  # as another worker does to a stale trial
            trial = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))[0]
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return 1.0

    runner.optimize(study, BRANIN, objective, 2, desc=None)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]


def test_a_surplus_trial_is_failed_before_it_runs_and_its_point_requeued(tmp_path):
    """Two workers asking at once for the last trial: the later one is not run."""
    study, _ = runner.open_study(str(tmp_path / "s.journal"), "s", "random", BRANIN, 0)
    study.enqueue_trial({"x1": 0.0, "x2": 1.0})
    study.enqueue_trial({"x1": 2.0, "x2": 3.0})
    first, second = study.ask(BRANIN.distributions()), study.ask(BRANIN.distributions())
    assert not runner._surplus(study, first, 1)
    assert runner._surplus(study, second, 1)
    trials = study.get_trials(deepcopy=False)
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs == {"surplus": True}
    assert trials[2].state == TrialState.WAITING and trials[2].params == {}
    assert trials[2].system_attrs["fixed_params"] == {"x1": 2.0, "x2": 3.0}


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """``run_workers``' processes die with the stage: a SIGKILL of the parent leaves none."""
    parent = spawn("from distillery.search import runner; from tests.unit.search_toys import "
                   f"Sleeper; runner.run_workers(Sleeper({str(tmp_path)!r}), 2)")
    pid_files = [tmp_path / f"{i}.pid" for i in range(2)]
    wait_for(lambda: all(f.exists() for f in pid_files), 120, "both workers to start")
    pids = [int(f.read_text()) for f in pid_files]
    parent.kill()
    parent.wait()

    def gone(pid: int) -> bool:  # exited (a zombie nobody reaped yet counts)
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    try:
        wait_for(lambda: all(gone(p) for p in pids), 10, f"workers {pids} to exit")
    finally:
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_die_with_parent_exits_at_once_when_the_parent_is_already_gone():
    code = ("import os; from distillery.search import runner; "
            "runner.die_with_parent(os.getppid() + 1); print('survived')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "survived" not in proc.stdout


# --------------------------------------------------------------------------- env:NAME storage


def test_storage_named_by_an_environment_variable(pg_url, monkeypatch):
    monkeypatch.setenv("DISTILLERY_TEST_STORAGE", pg_url)
    study = runner.load("env:DISTILLERY_TEST_STORAGE", "s")
    study.enqueue_trial({"x": 1.0})
    assert not runner.is_journal("env:DISTILLERY_TEST_STORAGE")
    # the same study, opened by its URL
    assert len(optuna.load_study(study_name="s", storage=pg_url).trials) == 1


def test_a_missing_storage_variable_is_one_user_error(monkeypatch):
    monkeypatch.delenv("DISTILLERY_NOT_SET", raising=False)
    with pytest.raises(UserError, match="environment variable DISTILLERY_NOT_SET is not set"):
        runner.load("env:DISTILLERY_NOT_SET", "s")


@pytest.mark.parametrize("section", ["hpo", "nas"])
@pytest.mark.parametrize(("value", "expected"), [
    ("env:DISTILLERY_STORAGE", None),
    ("postgresql://optuna@db-host/optuna", None),
    ("sqlite:///trials.db", None),
    ("env:1BAD", "storage: got 'env:1BAD', expected env:NAME"),
    ("env:", "storage: got 'env:', expected env:NAME"),
    ("postgresql://user:s3cret@db-host/optuna", "a URL with a password would be written"),
])
def test_storage_params(section, value, expected):
    from distillery.config.base import parse_section
    from distillery.config.hpo import HpoParams
    from distillery.config.nas import NasParams

    cls = {"hpo": HpoParams, "nas": NasParams}[section]
    if expected is None:
        assert parse_section(cls, {"storage": value}, section).storage == value
        return
    with pytest.raises(UserError) as err:
        parse_section(cls, {"storage": value}, section)
    assert f"{section}.storage: got" in str(err.value) and expected in str(err.value)
    assert "s3cret" not in str(err.value)  # the message does not repeat the password


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")
def test_a_trial_that_never_beat_is_failed_once_seen_silent_for_the_grace_period(pg_url,
                                                                                  tmp_path):
    """A worker killed between ``ask`` and its first heartbeat: Optuna's stale check never
    fails its trial; :class:`~distillery.search.stale.Silent` does, after the grace period on
    its own clock, and leaves a trial with a heartbeat to Optuna."""
    from distillery.search import stale

    study = runner.load(pg_url, "s", heartbeat=HEARTBEAT)
    dead, live = study.ask(BRANIN.distributions()), study.ask(BRANIN.distributions())
    study._storage.record_heartbeat(live._trial_id)
    assert stale.unbeaten(study) == {dead._trial_id}
    assert stale.grace(study) == HEARTBEAT[1]
    silent = stale.Silent(0.3)
    assert silent.fail(study) == []  # first seen now
    time.sleep(0.4)
    assert [t.number for t in silent.fail(study)] == [dead.number]
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.RUNNING]
    assert stale.grace(runner.load(str(tmp_path / "s.journal"), "s")) is None
