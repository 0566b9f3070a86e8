"""Tests of ``distillery.search.resume``: the kept journal of a study, seeded from the stage's
``--trials`` output only when that holds more of the study, and copied back to it."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

from distillery.search import resume


def add_trials(path: Path, study: str, n: int) -> None:
    """``n`` finished trials more in study ``study`` of the journal file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(study_name=study, load_if_exists=True,
                            storage=JournalStorage(JournalFileBackend(str(path))))
    s.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n)


def test_kept_journal_beside_the_output_and_published(tmp_path):
    out = tmp_path / "search" / "hpo.journal"
    path = Path(resume.kept(out, "hpo-abc"))
    assert path == tmp_path / "search" / "resume" / "hpo-abc.journal"
    assert not path.exists() and not out.exists()  # nothing to seed from
    add_trials(path, "hpo-abc", 2)
    resume.publish(path, out)
    assert out.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["hpo.journal", "resume"]


def test_seeded_only_by_an_output_further_along(tmp_path):
    out = tmp_path / "hpo.journal"
    add_trials(out, "hpo-other", 3)  # another search: never resumed
    path = Path(resume.kept(out, "hpo-abc"))
    assert not path.exists()
    add_trials(out, "hpo-abc", 2)  # e.g. a run of this search checked out by dvc
    path = Path(resume.kept(out, "hpo-abc"))
    assert path.read_bytes() == out.read_bytes()
    add_trials(path, "hpo-abc", 2)  # a killed run: kept 4, the rolled-back output 2
    kept = path.read_bytes()
    assert resume.kept(out, "hpo-abc") == str(path) and path.read_bytes() == kept
    add_trials(out, "hpo-abc", 3)  # an applied experiment that extended it: output 5
    resume.kept(out, "hpo-abc")
    assert path.read_bytes() == out.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hpo.journal", "resume"]  # no debris


def test_a_queued_experiments_journal_is_kept_in_the_users_repository(tmp_path, monkeypatch):
    """In a copy under ``.dvc/tmp/exps/`` (``$DVC_ROOT`` = the user's repository), the kept
    journal lives in the user's repository: deleting the copy, as DVC does after a kill, keeps
    it; the same search run again there (or in the workspace) resumes it."""
    user = tmp_path / "repo"
    copy = user / ".dvc" / "tmp" / "exps" / "tmpab12"
    (copy / ".dvc").mkdir(parents=True)
    monkeypatch.setenv("DVC_ROOT", str(user))
    monkeypatch.chdir(copy)
    path = Path(resume.kept("models/search/hpo.journal", "hpo-q"))
    assert path == user / "models" / "search" / "resume" / "hpo-q.journal"
    add_trials(path, "hpo-q", 2)
    monkeypatch.chdir(user)  # the workspace: DVC_ROOT is its own root
    monkeypatch.setenv("DVC_ROOT", str(user))
    assert resume.kept("models/search/hpo.journal", "hpo-q") == "models/search/resume/hpo-q.journal"
    monkeypatch.delenv("DVC_ROOT")  # outside DVC: beside the output
    assert resume.home(Path("models/search/hpo.journal")) == Path("models/search")


def test_a_second_run_of_a_held_search_keeps_its_own_journal(tmp_path, monkeypatch):
    """Another process holds the study (two queued experiments, one search): this run does
    not share its journal (its start would fail the other's running trials)."""
    import subprocess
    import sys

    shared = tmp_path / "user" / "resume" / "hpo-h.journal"
    holder = subprocess.Popen(
        [sys.executable, "-c", "from distillery.search import resume; import sys, time; "
         "resume._lock(__import__('pathlib').Path(sys.argv[1])); print('held', flush=True); "
         "time.sleep(60)", str(shared)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        user, copy = tmp_path / "user", tmp_path / "user" / ".dvc" / "tmp" / "exps" / "c"
        (copy / ".dvc").mkdir(parents=True)
        monkeypatch.setenv("DVC_ROOT", str(user))
        monkeypatch.chdir(copy)
        assert resume.kept("hpo.journal", "hpo-h") == "resume/hpo-h.journal"  # its own
    finally:
        holder.kill()
        holder.wait()
    assert Path(resume.kept(copy / "hpo.journal", "hpo-h")) == shared  # released by the kill
