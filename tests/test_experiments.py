"""``dvc exp run`` on tiny params in a temporary repo copy: a killed experiment resumes its
search when rerun with the same command, and queued experiments (``--queue``, run in temporary
copies of the repo) find the default relative ``data.source``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.storages.journal import JournalFileBackend, JournalStorage

from .stages.conftest import ROOT, copy_project, tiny_params

pytestmark = pytest.mark.e2e

FINISHED = re.compile(r"trial (\d+) (\{[^}]*\}): (?!its worker died)")
"""A log line of a trial that ran to its end (finished or pruned) in this process."""
PROGRESS = re.compile(r"(?:full|lora): +\d+%\|[^|]*\| *[1-9]\d*/\d+")
"""A trial's training bar past its first step (``full:   5%|▌    | 1/20``; not the bar of
the trials, ``hpo gp: 67%|…| 2/3``)."""


def dvc_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def dvc(*args: str, cwd: Path, timeout: float = 600) -> str:
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=dvc_env(),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout + out.stderr


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def repo(tmp_path, tiny_teacher_dir, tiny_raw_dir) -> Path:
    """A git + DVC repo copy on tiny params whose ``data.source`` is the default-style relative
    ``../shared/sst2`` (a folder beside the clone)."""
    work = copy_project(tmp_path / "repo")
    (work / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    shutil.copy(ROOT / ".gitignore", work / ".gitignore")
    shutil.copytree(tiny_raw_dir, tmp_path / "shared" / "sst2")
    params = tiny_params(tiny_teacher_dir, "../shared/sst2")
    # a cheap baseline search (the models need not learn here)
    params["hpo"].update(pruner="none", n_trials=1, n_initial=1, min_epochs=2.0, evals=1)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    git("init", "-q", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "init", cwd=work)
    return work


def run_until(cmd: list[str], cwd: Path, finished: int) -> str:
    """Run ``cmd`` (its own process group) until ``finished`` trials have ended and the next
    one is training (its progress bar moves), then SIGKILL the whole group (dvc and the stage);
    return everything it printed."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=dvc_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log = ""
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 1 << 16).decode(errors="replace")
            if not chunk:
                raise AssertionError(f"ended before {finished} trials:\n{log}")
            log += chunk
            ends = [m.end() for m in FINISHED.finditer(log)]
            if len(ends) >= finished and PROGRESS.search(log, ends[finished - 1]):
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        log += proc.stdout.read().decode(errors="replace")
        proc.wait()
    return log


def trained(log: str) -> list[tuple[int, str]]:
    return [(int(n), params) for n, params in FINISHED.findall(log)]


@pytest.mark.parametrize("where", [[], ["--temp"]], ids=["workspace", "temp"])
def test_killed_experiment_resumes(repo, where):
    """Killed in the workspace, or in the temporary copy of ``--temp`` (where queued
    experiments run too, a copy DVC deletes): the same command again resumes the search."""
    dvc("repro", "hpo", cwd=repo)  # the baseline's journal is now in dvc.lock
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "baseline", cwd=repo)
    # trials of 20 steps: long enough to be killed mid-trial
    cmd = [sys.executable, "-m", "dvc", "exp", "run", *where, "-S", "hpo.seed=9", "-S",
           "hpo.n_trials=3", "-S", "hpo.n_initial=2", "-S", "hpo.min_epochs=16", "hpo"]
    first = trained(run_until(cmd, repo, finished=2))
    assert len(first) >= 2, first
    out = subprocess.run(cmd, cwd=repo, env=dvc_env(), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    second = trained(out.stdout + out.stderr)
    resumed = f"resuming with {len(first)} finished trials ({3 - len(first)} left running"
    assert resumed in out.stderr, out.stderr[-3000:]  # killed mid-trial
    # every trial trained once: none of those finished before the kill ran again
    assert not {n for n, _ in first} & {n for n, _ in second}, (first, second)
    assert not {p for _, p in first} & {p for _, p in second}, (first, second)
    assert len(first) + len(second) == 3, (first, second)
    journal = repo / "models/search/hpo.journal"
    if where:  # the outputs are in the experiment's git ref; the journal it kept, here
        ref = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
                             cwd=repo, capture_output=True, text=True, check=True).stdout.split()
        metrics = json.loads(subprocess.run(["git", "show", f"{ref[-1]}:metrics/hpo.json"],
                                            cwd=repo, capture_output=True, check=True).stdout)
        journal = max((repo / "models/search/resume").glob("hpo-*.journal"),
                      key=lambda f: f.stat().st_mtime)  # the baseline's is there too
    else:
        metrics = json.loads((repo / "metrics" / "hpo.json").read_text())
    assert metrics["n_trials"] == 3 and metrics["n_resumed"] == len(first), metrics
    journal = JournalStorage(JournalFileBackend(str(journal)))
    (study,) = optuna.get_all_study_summaries(journal)  # the output: this study alone
    states = Counter(t.state.name for t in optuna.load_study(
        study_name=study.study_name, storage=journal).trials)
    assert states["COMPLETE"] == 3 and states["FAIL"] <= 1, states


def test_queued_experiments_find_relative_source(repo):
    """``dvc exp run --queue`` runs in a copy under ``.dvc/tmp/exps`` where the relative
    ``../shared/sst2`` is not beside the working directory: it is taken from ``$DVC_ROOT``."""
    for seed in (1, 2):
        dvc("exp", "run", "--queue", "-S", f"prepare.seed={seed}", "prepare", cwd=repo)
    dvc("queue", "start", "-j", "2", cwd=repo)
    deadline = time.monotonic() + 400
    while True:
        status = dvc("queue", "status", cwd=repo)
        if not re.search(r"\b(Queued|Running)\b", status) or time.monotonic() > deadline:
            break
        time.sleep(2)
    if status.count("Success") != 2:  # the log of each task that failed
        logs = [dvc("queue", "logs", task, cwd=repo)[-3000:]
                for task in re.findall(r"^(\w+) .*Failed$", status, re.M)]
        raise AssertionError(status + "\n".join(logs))
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo))
    runs = [exp for rev in shown for exp in rev.get("experiments") or []]
    seeds = sorted(run["revs"][0]["data"]["params"]["params.yaml"]["data"]["prepare"]["seed"]
                   for run in runs)
    assert seeds == [1, 2], shown
