"""Tests of ``distillery.core.io``: atomic writes, JSON / CSV helpers, seeding and the timer."""

from __future__ import annotations

import csv
import json
import os
import random

import numpy as np
import pytest
import torch

from distillery.core import io
from distillery.core.io import UserError


class Boom(Exception):
    """Raised inside a ``with atomic_path(...)`` body to simulate a crash."""


def _write_old(path, kind: str) -> None:
    if kind == "file":
        path.write_text("old")
    elif kind == "folder":
        path.mkdir()
        (path / "a.txt").write_text("old")


@pytest.mark.parametrize("existing", ["nothing", "file", "folder"])
def test_atomic_path_keeps_old_and_leaves_no_debris_when_body_raises(tmp_path, existing):
    target = tmp_path / "out"
    _write_old(target, existing)
    with pytest.raises(Boom), io.atomic_path(target) as tmp:
        assert tmp.parent.parent == tmp_path and tmp.name == "out"
        tmp.write_text("half-written")
        raise Boom
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if existing == "nothing" else ["out"])
    if existing == "file":
        assert target.read_text() == "old"
    if existing == "folder":
        assert [p.name for p in target.iterdir()] == ["a.txt"]
        assert (target / "a.txt").read_text() == "old"


@pytest.mark.parametrize("existing", ["nothing", "file", "folder"])
def test_atomic_path_replaces_file_on_success(tmp_path, existing):
    target = tmp_path / "out"
    _write_old(target, existing)
    with io.atomic_path(target) as tmp:
        tmp.write_text("new")
        if existing == "file":
            assert target.read_text() == "old"  # readers see the old file until the end
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_path_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "model"
    _write_old(target, "folder")
    with io.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "b.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["b.txt"]  # the stale a.txt is gone
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_path_creates_parent_folders(tmp_path):
    target = tmp_path / "x" / "y" / "out.txt"
    with io.atomic_path(target) as tmp:
        tmp.write_text("ok")
    assert target.read_text() == "ok"


def test_write_json_roundtrip_and_pretty(tmp_path):
    obj = {"b": 1, "a": [1.5, "x", None], "nested": {"ok": True}}
    path = tmp_path / "m" / "metrics.json"
    io.write_json(path, obj)
    text = path.read_text()
    assert text.endswith("\n")
    assert text == json.dumps(obj, indent=2) + "\n"  # key order kept, indented
    assert io.read_json(path) == obj


def test_write_json_writes_unmeasured_figures_as_null(tmp_path):
    """NaN is not JSON (DVC's metrics and strict parsers reject it): non-finite floats at any
    depth become null."""
    path = tmp_path / "metrics.json"
    io.write_json(path, {"latency_ms": float("nan"), "rows": [{"x": float("inf")}, (1.0, -0.0)],
                         "n": 3})
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert json.loads(path.read_text(), parse_constant=lambda c: 1 / 0) == {
        "latency_ms": None, "rows": [{"x": None}, [1.0, -0.0]], "n": 3}


def test_write_csv_header_from_first_row(tmp_path):
    rows = [{"trial": 0, "lr": 0.1, "score": 0.5}, {"trial": 1, "lr": 0.01, "score": 0.75}]
    path = tmp_path / "plots" / "h.csv"
    io.write_csv(path, rows)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["trial", "lr", "score"]
        assert list(reader) == [{k: str(v) for k, v in r.items()} for r in rows]


def test_write_csv_refuses_empty_table(tmp_path):
    with pytest.raises(ValueError, match="empty table"):
        io.write_csv(tmp_path / "h.csv", [])
    assert list(tmp_path.iterdir()) == []


def test_read_json_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(UserError) as err:
        io.read_json(tmp_path / "metrics" / "nas.json")
    assert "nas.json" in str(err.value)
    assert "dvc repro" in str(err.value)


def test_seed_everything_makes_draws_repeatable():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    io.seed_everything(123)
    first = draw()
    io.seed_everything(123)
    assert draw() == first
    io.seed_everything(124)
    assert draw() != first


def test_timer_reports_elapsed_seconds(monkeypatch):
    ticks = iter([10.0, 12.5])
    monkeypatch.setattr(io.time, "perf_counter", lambda: next(ticks))
    with io.Timer() as t:
        pass
    assert t.seconds == 2.5


def test_atomic_path_removes_debris_of_a_killed_writer(tmp_path):
    """A process killed inside ``atomic_path`` leaves ``.out.<pid>.*``; the next write
    removes it (its pid is dead) but keeps the folder of a live writer."""
    import subprocess
    import sys

    code = ("import os, sys, time; from distillery.core import io\n"
            f"with io.atomic_path({str(tmp_path / 'out')!r}) as t:\n"
            "    t.write_text('half'); print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    live = tmp_path / f".out.{os.getpid()}.keep"
    live.mkdir()
    proc.kill()
    proc.wait()
    debris = [p for p in tmp_path.iterdir() if p.name.startswith(f".out.{proc.pid}.")]
    assert len(debris) == 1
    io.write_json(tmp_path / "out", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name])


def test_a_folder_replace_killed_between_its_renames_leaves_the_old_folder(tmp_path):
    """Killed after the old folder was renamed aside and before the new one moved in: the
    target is missing, the old folder whole in the debris; the next write of the target puts
    it back first (here the next write fails, so the old folder stays)."""
    import subprocess
    import sys

    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_text("old")
    code = ("import os, time; from distillery.core import io\n"
            "real = os.replace\n"
            "def slow(src, dst):\n"
            "    real(src, dst)\n"
            f"    if str(src) == {str(target)!r}:\n"
            "        print('aside', flush=True); time.sleep(60)\n"
            "io.os.replace = slow\n"
            f"with io.atomic_path({str(target)!r}) as t:\n"
            "    t.mkdir(); (t / 'weights.bin').write_text('new')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "aside"
    proc.kill()
    proc.wait()
    assert not target.exists()
    with pytest.raises(Boom), io.atomic_path(target):
        raise Boom
    assert (target / "weights.bin").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_move_in_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "a.txt").write_text("old")
    real = os.replace

    def fail_second(src, dst):
        new_one = os.path.basename(src) == "model" and \
            os.path.basename(os.path.dirname(src)).startswith(".model.")
        if new_one:  # the new folder moving in
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(io.os, "replace", fail_second)
    with pytest.raises(OSError, match="disk full"), io.atomic_path(target) as tmp:
        tmp.mkdir()
    monkeypatch.undo()
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
