"""Stages ``data`` and ``prepare`` on small sources written by the tests: the 7-class intent
tsv of issue 5 (string labels, header ``text<TAB>label``), a source without an eval split,
imbalanced labels, and a bad param run the way DVC runs it."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from distillery.data.prepared import load_prepared
from tests.stages.conftest import ROOT, load_stage

INTENTS = ["billing", "cancel", "greeting", "login", "refund", "shipping", "upgrade"]


def _intent_rows(n: int, seed: int, weights=None) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    labels = rng.choices(INTENTS, weights=weights, k=n)
    return [(f"please help with my {y} issue number {seed}-{i}", y) for i, y in enumerate(labels)]


def _tsv(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))


def _csv(path: Path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *rows])


def _run(folder: Path, **data) -> tuple[dict, dict]:
    """data + prepare with small split sizes; returns (prepare metrics, prepared splits)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"] = {**params["data"], "text_column": "text", "label_names": None, **data}
    params["prepare"].update(n_train=140, n_val=35, n_transfer=50)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    load_stage("data").main(["--out", "raw", "--metrics", "m/data.json"])
    load_stage("prepare").main(["--raw", "raw", "--out", "prep", "--metrics", "m/prep.json",
                                "--class-counts", "plots/class_counts.csv"])
    metrics = json.loads(Path("m/prep.json").read_text())
    with Path("plots/class_counts.csv").open() as f:
        rows = list(csv.DictReader(f))
    for split in ("train", "val", "eval"):  # per-class counts: a plot file, not metrics
        metrics[f"{split}_class_counts"] = {r["class"]: int(r[split]) for r in rows}
    return metrics, load_prepared("prep")


def test_seven_string_intents_from_a_text_label_tsv(tmp_path, monkeypatch):
    _tsv(tmp_path / "src" / "train.tsv", _intent_rows(400, seed=1))
    _tsv(tmp_path / "src" / "dev.tsv", _intent_rows(70, seed=2))
    monkeypatch.chdir(tmp_path)
    metrics, (splits, names) = _run(tmp_path, source=str(tmp_path / "src"))
    assert names == INTENTS and metrics["n_classes"] == 7 and metrics["label_type"] == "str"
    assert json.loads(Path("prep/labels.json").read_text()) == {"names": INTENTS, "pair": False}
    for split in ("train", "val", "eval"):
        counts = metrics[f"{split}_class_counts"]
        assert list(counts) == INTENTS and sum(counts.values()) == metrics[f"{split}_count"]
    assert min(metrics["train_class_counts"].values()) == metrics["min_train_class_count"] > 0
    assert metrics["eval_count"] == 70 and metrics["eval_carved"] is False
    assert set(splits["transfer"].labels) == {-1}


def test_a_source_without_eval_split_gets_a_stratified_carved_one(tmp_path, monkeypatch):
    rows = _intent_rows(420, seed=3)
    _csv(tmp_path / "tickets.csv", rows)
    monkeypatch.chdir(tmp_path)
    metrics, (splits, _) = _run(tmp_path, source="tickets.csv", eval_size=70)
    assert json.loads(Path("m/data.json").read_text()) == {
        "origin": "local", "source": "tickets.csv", "files": 1, "tickets_rows": 420}
    assert metrics["eval_carved"] is True and metrics["eval_count"] == 70
    share = {y: sum(1 for _, z in rows if z == y) / len(rows) for y in INTENTS}
    for y, n in metrics["eval_class_counts"].items():
        assert abs(n - 70 * share[y]) <= 1, y  # stratified: within rounding of its share
    texts = [set(s.texts) for s in splits.values()]
    assert sum(len(t) for t in texts) == len(set().union(*texts))  # no text in two splits


def test_imbalanced_labels_keep_their_proportions(tmp_path, monkeypatch):
    rows = [(f"fine text {i}", "ok") for i in range(360)] + [
        (f"broken text {i}", "spam") for i in range(40)]
    _tsv(tmp_path / "train.tsv", rows)
    monkeypatch.chdir(tmp_path)
    metrics, _ = _run(tmp_path, source="train.tsv", eval_size=50)
    assert metrics["train_class_counts"] == {"ok": 126, "spam": 14}  # 90 / 10 of 140
    # val: 35 of the 189 / 21 left = 31.5 / 3.5; the tied remainder goes to the first class
    assert metrics["val_class_counts"] == {"ok": 32, "spam": 3}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "error: train.tsv: no column 'sentence' (data.text_column); its columns are: "
             "text, label"),
        ({"text_column": "text", "label_column": "nope"},
         "error: train.tsv: no column 'nope' (data.label_column); its columns are: text, label"),
    ],
    ids=["default-text-column", "label-column"],
)
def test_a_missing_column_ends_with_the_message_alone(tmp_path, monkeypatch, data, message):
    """Run as DVC runs it: one message naming the params key, no traceback, exit status 1."""
    _tsv(tmp_path / "train.tsv", _intent_rows(50, seed=4))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source=str(tmp_path / "train.tsv"), **data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    load_stage("data").main(["--out", "raw", "--metrics", "d.json"])  # copying needs no column
    out = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "prepare.py"), "--raw", "raw", "--out", "prep",
         "--metrics", "p.json", "--class-counts", "c.csv"],
        capture_output=True, text=True, env={**os.environ, "DISTILLERY_DEBUG": "0"},
        cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert message in out.stderr
    assert not (tmp_path / "prep").exists() and not (tmp_path / "p.json").exists()


def test_a_quoted_tsv_with_label_oddities_reports_them_in_the_metrics(tmp_path, monkeypatch,
                                                                      capsys):
    """Banking77-style quoting (data.quoting=csv), labels that read like a missing value, a
    number among words, duplicates with another label: counted in metrics, warned once each."""
    rows = _intent_rows(400, seed=5) + [(f"nothing to do {i}", "None") for i in range(12)]
    rows += [(f"code {i}", "7") for i in range(12)] + [(rows[0][0], "upgrade"),
                                                       (rows[1][0], "upgrade")]
    rows = [(f'"{t}\nsecond line, ""quoted"""', y) for t, y in rows]
    _tsv(tmp_path / "train.tsv", rows)
    monkeypatch.chdir(tmp_path)
    metrics, (splits, names) = _run(tmp_path, source="train.tsv", eval_size=50, quoting="csv")
    assert json.loads(Path("m/data.json").read_text())["train_rows"] == 426
    assert names == ["7", "None", *INTENTS]
    assert all(t.endswith('\nsecond line, "quoted"') for t in splits["train"].texts)
    assert (metrics["labels_missing_like"], metrics["labels_mixed_numeric_words"]) == (12, 12)
    conflicting = sum(rows[i][1] != "upgrade" for i in (0, 1))
    assert metrics["conflicting_duplicates"] == conflicting > 0
    warned = [line for line in capsys.readouterr().err.splitlines() if " WARNING " in line]
    assert len(warned) == 3, warned  # stderr: one line per oddity
