"""Tests of ``scripts/gpu_check.py``, the one-off GPU measurement: its assets folder, a quick
run on tiny models (cuda parts skipped with a reason where there is no GPU, measured where
there is), and that it imports nothing the GPU machine lacks.

Timings are only checked to be measured (finite, positive, counted), never compared.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch
import yaml
from transformers import BertForSequenceClassification

from distillery.core import deps
from distillery.data import prepared
from distillery.measure import evaluate
from tests.conftest import make_sentences, tiny_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
THERE = {"torch", "transformers", "numpy", "sklearn", "tqdm", "yaml", "safetensors", "onnx",
         "onnxruntime", "peft", "tokenizers", "huggingface_hub", "distillery"}
"""Third-party packages of the GPU machine the check runs on (no optuna, dvc, dvclive, gguf,
lm_eval, gradio there)."""


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_repo(tmp_path, tiny_teacher_dir) -> Path:
    """A pipeline run's folders, tiny: teacher (with weights), student, prepared data, params."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_teacher_dir, repo / "models/teacher")
    torch.manual_seed(1)
    student = BertForSequenceClassification(tiny_config(num_hidden_layers=1,
                                                        initializer_range=0.2))
    student.save_pretrained(repo / "models/student", safe_serialization=True)
    for f in tiny_teacher_dir.glob("tokenizer*"):
        shutil.copy(f, repo / "models/student" / f.name)
    data = repo / "data/prepared"
    prepared.write_split(data / "eval.jsonl", make_sentences(80, seed=3))
    prepared.write_split(data / "train.jsonl", make_sentences(96, seed=4))
    prepared.write_labels(data / prepared.LABELS_FILE, ["negative", "positive"], pair=False)
    (repo / "params.yaml").write_text(yaml.safe_dump({"teacher": {"max_length": 16}}))
    return repo


def _make(gpu_check, repo: Path) -> Path:
    gpu_check.make_assets(repo / ".gpu", repo / "models/teacher", repo / "models/student",
                          repo / "data/prepared", repo / "params.yaml")
    return repo / ".gpu"


def test_assets_drop_teacher_weights_and_round_the_student_to_fp16(gpu_check, tiny_repo):
    assets = _make(gpu_check, tiny_repo)
    teacher = {p.name for p in (assets / "teacher").iterdir()}
    assert {"config.json", "tokenizer.json"} <= teacher and "model.safetensors" not in teacher
    assert sorted(p.name for p in (assets / "prepared").iterdir()) == [
        "eval.jsonl", "labels.json", "train.jsonl"]
    with safetensors.safe_open(assets / "student/model.safetensors", "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    meta = json.loads((assets / "meta.json").read_text())
    assert meta["max_length"] == 16 and meta["student"]["nonfinite_after_rounding"] == 0
    assert 0 < meta["student"]["max_abs_rounding_error"] < 1e-3
    # the rounded student, loaded back in fp32, scores like the original
    original = BertForSequenceClassification.from_pretrained(tiny_repo / "models/student").eval()
    rounded = gpu_check.load_student(assets / "student")
    assert next(rounded.parameters()).dtype == torch.float32
    split, tok = make_sentences(20, seed=5), gpu_check.load_tokenizer(assets / "student")
    np.testing.assert_allclose(evaluate.predict_logits(rounded, split, tok, 16),
                               evaluate.predict_logits(original, split, tok, 16), atol=1e-3)


def _finite_timing(t: dict) -> bool:
    return all(math.isfinite(t[k]) and t[k] > 0 for k in ("median_ms", "p90_ms", "min_ms")) \
        and t["p90_ms"] >= t["median_ms"] >= t["min_ms"]


def test_quick_run_measures_the_cpu_and_skips_cuda_with_a_reason(gpu_check, tiny_repo,
                                                                  monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # any machine: no GPU
    assets, out = _make(gpu_check, tiny_repo), tiny_repo / "out" / "gpu.json"
    assert gpu_check.main(["--assets", str(assets), "--out", str(out), "--quick",
                           "--threads", "1"]) == 0
    r, s = json.loads(out.read_text()), gpu_check.QUICK
    assert r["errors"] == {} and "is_available() is False" in r["skipped"]["cuda"]
    assert r["environment"]["cuda_available"] is False and r["mode"] == "quick"
    for who in ("teacher", "student"):
        lat = r["latency"][who]
        cpu = lat["variants"]["cpu_fp32"]
        assert _finite_timing(cpu["batch_1"]) and _finite_timing(cpu["batch_64"])
        assert cpu["batch_1"]["calls"] == s.rounds * s.b1_cpu
        assert cpu["batch_64"]["calls"] == s.rounds * s.b64_cpu
        assert lat["tokens"]["batch_64"]["max"] <= 16  # teacher.max_length of params.yaml
        for name in ("cuda_fp32", "cuda_autocast", "cuda_half"):
            assert lat["variants"][name] == {"skipped": r["skipped"]["cuda"]}
        assert lat["speedup_vs_cpu_fp32"] == {"cpu_fp32": {"batch_1": 1.0, "batch_64": 1.0}}
    assert r["latency"]["teacher"]["weights"] == "random (config of models/teacher)"
    acc = r["accuracy"]["variants"]
    # the reference is itself: identical logits; its score is the project's own evaluation
    assert acc["cpu_fp32"]["agree_with_cpu_fp32"] == 1.0
    assert acc["cpu_fp32"]["max_abs_dlogit_vs_cpu_fp32"] == 0.0
    assert acc["cpu_fp32"]["accuracy_delta_ci95"] == [0.0, 0.0]
    tok = gpu_check.load_tokenizer(assets / "student")
    logits = evaluate.predict_logits(gpu_check.load_student(assets / "student"),
                                     make_sentences(80, seed=3), tok, 16)
    assert acc["cpu_fp32"]["accuracy"] == evaluate.accuracy(logits, make_sentences(80, 3).labels)
    assert acc["cuda_half"] == {"skipped": r["skipped"]["cuda"]}
    train = r["training"]
    assert train["cpu"]["steps"] == s.cpu_train_steps and train["cpu"]["schedule_steps"] == 60
    assert all(math.isfinite(x) for x in train["cpu"]["losses"])
    assert train["cpu"]["steady_steps_per_s"] > 0 and train["cuda"] == {
        "skipped": r["skipped"]["cuda"]}


@pytest.mark.gpu
def test_quick_run_measures_every_cuda_variant(gpu_check, tiny_repo):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    assets = _make(gpu_check, tiny_repo)
    r = gpu_check.run_check(assets, tiny_repo / "gpu.json", quick=True, threads=1)
    assert r["errors"] == {} and r["skipped"] == {}
    for name in ("cuda_fp32", "cuda_autocast", "cuda_half"):
        assert _finite_timing(r["latency"]["student"]["variants"][name]["batch_64"])
        assert r["accuracy"]["variants"][name]["agree_with_cpu_fp32"] > 0.9
    assert r["accuracy"]["variants"]["cuda_fp32"]["max_abs_dlogit_vs_cpu_fp32"] < 1e-3
    assert r["training"]["cuda"]["steps"] == gpu_check.QUICK.cuda_train_steps


def _third_party(path: Path) -> set[str]:
    """Top-level names of the modules ``path`` imports (anywhere in the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out - set(sys.stdlib_module_names)


def test_imports_only_what_the_gpu_machine_has():
    files = deps.import_closure(SCRIPT, ROOT / "src")
    assert ROOT / "src/distillery/modeling/training.py" in files  # the closure is followed
    missing = {f"{f.relative_to(ROOT)}: {m}" for f in files for m in _third_party(f) - THERE}
    assert not missing
