"""Where a search's journal lives while it runs: out of reach of ``dvc exp run``'s checkout.

The ``--trials`` journal of stages ``hpo`` and ``nas`` is a persistent DVC output, and
``dvc exp run`` checks out the outputs recorded in ``dvc.lock`` before it runs: a journal that
a killed experiment left is put back to the state of the last finished run, and finished
trials would train again. So the trials run on a journal *kept* per study in ``resume/``
beside ``--trials`` (``models/search/resume/<study>.journal``: git-ignored and no DVC output,
so no checkout touches it), named by the study (the stage and a hash of everything that
defines the search: a different search never resumes it). The output is a copy of it,
written when the search ends (:func:`publish`). When the output holds more trials of the study
than the kept journal (a fresh clone after ``dvc pull``, an applied experiment that extended
the study), it seeds the kept journal (:func:`kept`).

Queued and temporary experiments (``dvc exp run --queue`` / ``--temp``) run in a copy of the
repository under ``.dvc/tmp/exps/`` that is deleted when they end, killed or not; their kept
journals live in the user's repository (``$DVC_ROOT``, which DVC sets to it), so a killed
queued run resumes when queued again, or when run in the workspace. One run at a time holds
a study's kept journal (an advisory lock, released when its process dies); a second run of the
same search meanwhile (two queued experiments that differ only downstream of it) keeps a
journal of its own in its copy, and starts that search again if killed.

Deleting ``resume/`` is safe: it only loses the trials of searches that never finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from optuna.storages.journal import JournalFileBackend, JournalStorage

from distillery.config.data import ROOT_ENV
from distillery.core.io import atomic_path
from distillery.search.runner import DONE

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per study is then the user's to keep
    fcntl = None

logger = logging.getLogger(__name__)

FOLDER = "resume"
"""Folder, beside the ``--trials`` output, of the kept journals."""


class _Keep(Exception):
    """The kept journal is at least as far along as the output: do not seed it."""


_HELD: dict[Path, int] = {}
"""The locks this process holds, by journal: descriptors closed, so released, when it exits."""


def kept(out: str | Path, study: str) -> str:
    """Path of the journal kept for ``study`` in ``resume/`` beside ``out`` (the stage's
    ``--trials`` output; in the user's repository when ``out`` lies in an experiment's
    temporary copy), locked for this process; seeded from ``out`` when ``out`` holds more
    finished or pruned trials of it."""
    out = Path(out)
    path = home(out) / FOLDER / f"{study}.journal"
    if not _lock(path):
        logger.warning("study %s: another run holds %s; this run keeps its own journal in its "
                       "copy (a kill there starts the search again)", study, path)
        path = out.parent / FOLDER / f"{study}.journal"
    if out.is_file():
        have = _done(path, study)
        with contextlib.suppress(_Keep), atomic_path(path) as tmp:
            shutil.copyfile(out, tmp)  # a copy: the output may be a read-only cache link
            found = _done(tmp, study)
            if found <= have:
                raise _Keep
            logger.info("study %s: %d finished trials in %s (%d in %s)", study, found, out,
                        have, path)
    return str(path)


def home(out: Path) -> Path:
    """``out``'s folder, moved from an experiment's temporary copy of the repository (the
    nearest folder above holding ``.dvc/``, when it is not ``$DVC_ROOT``) to ``$DVC_ROOT``."""
    folder, root = out.parent.resolve(), os.environ.get(ROOT_ENV)
    repo = next((d for d in (folder, *folder.parents) if (d / ".dvc").is_dir()), None)
    if not root or repo is None or repo == Path(root).resolve():
        return out.parent
    return Path(root).resolve() / folder.relative_to(repo)


def _lock(journal: Path) -> bool:
    """Take ``<journal>.owner`` for this process (non-blocking); False if another holds it."""
    if journal in _HELD or fcntl is None:
        return True
    journal.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(journal.with_suffix(".owner"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _HELD[journal] = fd
    return True


def publish(path: str | Path, out: str | Path) -> None:
    """Copy the kept journal ``path`` to the stage's output ``out``, atomically."""
    with atomic_path(out) as tmp:
        shutil.copyfile(path, tmp)


def _done(path: Path, study: str) -> int:
    """Finished or pruned trials of ``study`` in the journal file ``path`` (0 if none)."""
    if not path.is_file():
        return 0
    storage = JournalStorage(JournalFileBackend(str(path)))
    try:
        study_id = storage.get_study_id_from_name(study)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False, states=DONE))
