"""Atomic file writes, logging set-up and small helpers shared by every stage.

A crash must never leave a half-written file that looks valid, so every write goes to a
temporary sibling first and is moved into place with ``os.replace`` (atomic on POSIX).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def setup_logging(level: int = logging.INFO) -> None:
    """Configure root logging for a stage's ``main`` (the library never does this)."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    for noisy in ("transformers", "onnxscript", "torch.onnx", "optuna", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stage_args(
    doc: str | None, paths: Sequence[str], argv: list[str] | None, params: bool = True
) -> argparse.Namespace:
    """Parse a stage's command line (every path comes from ``dvc.yaml``) and set up logging.

    Args:
        doc: the stage's docstring, shown by ``--help``.
        paths: required ``--<name>`` path arguments (dashes become underscores).
        argv: arguments (``None``: ``sys.argv``).
        params: whether the stage takes ``--params`` (default ``params.yaml``).
    """
    ap = argparse.ArgumentParser(description=doc)
    if params:
        ap.add_argument("--params", default="params.yaml")
    for name in paths:
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args(argv)
    setup_logging()
    return args


class UserError(ValueError):
    """Bad input from the user (params, data files): reported as a message, no traceback."""


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a user's mistake ends with its message alone.

    :class:`UserError` (raised for bad params, bad data or a missing upstream output, each
    with what to fix) prints ``error: <message>`` and exits with status 1; any other exception
    is a bug and keeps its traceback. Set ``DISTILLERY_DEBUG=1`` to see the traceback of a
    user error too.
    """
    try:
        main()
    except UserError as err:
        if os.environ.get("DISTILLERY_DEBUG") == "1":
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so runs are repeatable."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success.

    Works for files and folders. On error the temporary path is deleted and ``path`` is
    left as it was. A file replaces the old one in one rename. A folder cannot be renamed over
    a folder, so the old one is first renamed aside (into the temporary folder), then the new
    one in, then the old one deleted: a kill at any point leaves the old folder or the new one
    whole, never a half-deleted one (if the kill falls between the two renames, the next write
    of ``path`` puts the old folder back first).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent))
    tmp = work / path.name
    try:
        yield tmp
        aside = None
        if path.is_dir() and not path.is_symlink():
            aside = work / ASIDE
            os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            if aside is not None and not path.exists():
                os.replace(aside, path)  # the old folder back before the debris goes
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


ASIDE = ".replaced"
"""Name of the old folder inside a temporary sibling while the new one moves in."""


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary siblings ``.<name>.<pid>.*`` left by a killed process, first putting
    back an old folder that process had renamed aside when ``path`` itself is missing.

    A folder whose pid is still alive belongs to a running writer and is kept.
    """
    for tmp in path.parent.glob(f".{path.name}.*"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if not tmp.is_dir() or not pid.isdigit() or _alive(int(pid)):
            continue
        old = tmp / ASIDE
        if old.is_dir() and not path.exists():
            logger.warning("restoring %s, renamed aside by a killed run", path)
            os.replace(old, path)
        logger.info("removing %s, left by a killed run", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as pretty, strict JSON, atomically: a NaN or infinite float (a figure
    that was not measured, e.g. a latency NAS did not time) becomes ``null``, which every JSON
    reader (DVC's metrics, ``jq``, browsers) accepts; ``NaN`` is not JSON."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False)
                       + "\n")


def _finite(obj: Any) -> Any:
    """``obj`` with its non-finite floats (at any depth of dicts, lists and tuples) as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def read_json(path: str | Path) -> Any:
    """Read a JSON file, with a clear error if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: run the stage that produces it (dvc repro)")
    return json.loads(path.read_text())


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write a list of flat dicts as CSV (header from the first row), atomically."""
    if not rows:
        raise ValueError(f"refusing to write an empty table to {path}")
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


class Timer:
    """Context manager measuring wall-clock seconds: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def fingerprint(path: str | Path) -> str:
    """SHA-256 over the files of a folder (names and bytes): trials on other data are not
    the same experiment."""
    h = hashlib.sha256()
    root = Path(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()
