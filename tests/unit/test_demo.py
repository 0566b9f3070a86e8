"""``python -m distillery.serve.demo``: which models it shows, the examples it offers, and what it
says when a model is missing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from distillery.core.io import UserError
from distillery.data import prepared
from distillery.data.prepared import Split
from distillery.measure import evaluate
from distillery.serve import demo, space_app


def paths(run) -> demo.Paths:
    return demo.Paths(run / "models", run / "data/prepared", run / "metrics/report.json",
                      run / "params.yaml")


def test_torch_classifier_equals_pipeline(tiny_pair_run_dir):
    """The teacher column answers as evaluate.predict_logits does, pairs included."""
    models, problems = demo.load_models(["teacher-torch-fp32"], paths(tiny_pair_run_dir), 16,
                                        sentence_pair=True)
    (teacher,) = models
    assert problems == [] and teacher.labels == ["contra", "entail", "neutral"]
    split = prepared.read_split(tiny_pair_run_dir / "data/prepared/eval.jsonl")
    logits = evaluate.predict_logits(teacher.model, split, teacher.tokenizer, 16)
    for i in range(len(split)):
        p = teacher.predict(split.texts[i], split.pairs[i])
        probs = np.array([p.probs[n] for n in teacher.labels])
        np.testing.assert_allclose(probs, space_app.softmax(logits[i].astype(np.float64)),
                                   atol=1e-5)


def test_missing_models_name_the_stage(tmp_path, tiny_run_dir):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    shutil.rmtree(run / "models/teacher")
    models, problems = demo.load_models(
        ["teacher-torch-fp32", "student-onnx-fp32", "student-onnx-int9"], paths(run), 16, False)
    assert [m.name for m in models] == ["student-onnx-fp32"]
    assert problems[0].endswith("teacher not found: run `dvc repro hpo`")
    assert problems[1].startswith("unknown variant 'student-onnx-int9'; this run has: ")
    shutil.rmtree(run / "models/onnx")
    _, problems = demo.load_models(["student-onnx-int8"], paths(run), 16, False)
    assert problems == [f"ONNX models for student-onnx-int8: {run}/models/onnx not found: run "
                        "`dvc repro export`"]
    shutil.rmtree(run / "models/student")
    with pytest.raises(UserError, match="no model to show"):
        demo.build(["student-onnx-fp32"], paths(run))


def test_default_variant_follows_the_report(tmp_path, tiny_run_dir):
    p = paths(tiny_run_dir)
    assert demo.default_variants(p) == ["student-onnx-int8"]  # no report yet
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"recommended": "student-pruned-vocab-onnx-int8"}))
    p.report = report
    assert demo.default_variants(p) == ["student-pruned-vocab-onnx-int8"]


def test_pick_examples_puts_disagreements_first():
    split = Split([f"s{i}" for i in range(6)], [0, 1, 0, 1, 0, 1])
    preds = {"teacher": np.array([0, 1, 1, 1, 0, 1]), "student": np.array([0, 0, 1, 1, 0, 1])}
    rows = demo.pick_examples(split, preds, ["neg", "pos"], n=3)
    assert [r["text"] for r in rows] == ["s1", "s0", "s3"]  # disagree first, then all right
    assert rows[0]["note"] == "models disagree · gold pos · teacher: pos · student: neg"
    assert rows[1]["note"] == "right · gold neg · teacher: neg · student: neg"
    # One model: the examples it gets wrong come first.
    rows = demo.pick_examples(split, {"student": preds["student"]}, ["neg", "pos"], n=4)
    assert [r["text"] for r in rows] == ["s1", "s2", "s0", "s3"]
    assert rows[0]["note"] == "wrong · gold pos · student: neg"


def test_build_offers_eval_examples(tiny_run_dir):
    ui = demo.build(["student-onnx-fp32"], paths(tiny_run_dir), examples=4)
    names = [b.value for b in ui.blocks.values() if type(b).__name__ == "Markdown"]
    assert any("teacher-torch-fp32" in str(n) for n in names)
    assert any("student-onnx-fp32" in str(n) for n in names)


def test_cli_list(tiny_run_dir, capsys):
    demo.main(["--list", "--models", str(tiny_run_dir / "models")])
    assert capsys.readouterr().out.split() == ["teacher-torch-fp32", "student-torch-fp32",
                                               "student-onnx-fp32"]


def test_demo_caps_input_and_tokenises_once(tmp_path, tiny_run_dir):
    """``space.max_input_chars`` caps the demo's input; the teacher tokenises a text once."""
    import asyncio

    import yaml

    from .test_space_app import Counting

    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    params = yaml.safe_load((run / "params.yaml").read_text())
    params["space"]["max_input_chars"] = 50
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    ui = demo.build(["student-onnx-fp32"], paths(run), examples=0)
    (run_page,) = [f.fn for f in ui.fns.values() if f.api_name == "classify"]
    line = asyncio.run(run_page("x" * 51))[0]
    assert line == ("The input is 51 characters long; this page takes at most 50 (the models "
                    "read only the first 16 tokens): shorten it.")
    (teacher,), _ = demo.load_models(["teacher-torch-fp32"], paths(run), 16, False)
    teacher.encode.full = Counting(teacher.encode.full)
    text = " ".join(["good"] * 40)
    p = teacher.predict(text)
    assert teacher.encode.full.texts == [text] and p.truncated
    assert p.tokens == len(teacher.tokenizer(text)["input_ids"]) == 42
