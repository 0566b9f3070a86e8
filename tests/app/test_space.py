"""The Space folder runs on its own: a fresh venv with only its ``requirements.txt`` (no torch,
no distillery) serves the pipeline's predictions, and a missing model file is a message on the
page. The venv is built once per requirements file and cached (``$DISTILLERY_CACHE``, default
``~/.cache/distillery``): the first run downloads gradio and onnxruntime from PyPI (~1 min)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from distillery.data import prepared
from distillery.measure import evaluate
from distillery.modeling.loading import load_tokenizer

from ..stages.conftest import load_stage
from .conftest import ROOT, free_port, wait_for

# Numbers for the Space's README table: made up by this test (it checks the folder, not them).
CARD_NUMBERS = {"accuracy": 0.5, "macro_f1": 0.5, "latency_ms_p50": 1.0, "latency_ms_p95": 2.0,
                "throughput_per_s": 100.0, "size_mb": 0.3, "n_params": 1000, "provider": "cpu"}


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory, tiny_run_dir) -> Path:
    """The ``space`` stage run on the tiny pipeline run."""
    run = tmp_path_factory.mktemp("space") / "run"
    shutil.copytree(tiny_run_dir, run)
    metrics = run / "metrics"
    metrics.mkdir()
    (metrics / "report.json").write_text(json.dumps({"recommended": "student-onnx-fp32"}))
    (metrics / "benchmark.json").write_text(json.dumps(
        {"student-onnx-fp32": CARD_NUMBERS, "threads": {"torch": 1, "onnxruntime": 1}}))
    cwd = os.getcwd()
    os.chdir(run)
    try:
        load_stage("space").main(["--onnx", "models/onnx", "--tokenizer", "models/student",
                                  "--data", "data/prepared", "--report", "metrics/report.json",
                                  "--bench", "metrics/benchmark.json", "--out", "models/space",
                                  "--metrics", "metrics/space.json"])
    finally:
        os.chdir(cwd)
    return run / "models/space"


@pytest.fixture(scope="module")
def space_python(space_dir) -> Path:
    """Python of a venv that has exactly the Space's requirements (cached by their hash)."""
    reqs = (space_dir / "requirements.txt").read_text()
    cache = Path(os.environ.get("DISTILLERY_CACHE", Path.home() / ".cache/distillery"))
    venv = cache / f"space-venv-{hashlib.sha256(reqs.encode()).hexdigest()[:12]}"
    python = venv / "bin/python"
    if not (venv / ".complete").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        out = subprocess.run([str(python), "-m", "pip", "install", "-q", "-r",
                              str(space_dir / "requirements.txt")],
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, f"pip install -r requirements.txt failed:\n{out.stderr}"
        (venv / ".complete").touch()
    return python


def serve(python: Path, folder: Path):
    """Start ``python app.py`` in ``folder``; returns (process, url)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([str(python), "app.py"], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    wait_for(url, proc=proc)
    return proc, url


def test_space_venv_has_no_torch(space_python):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    out = subprocess.run([str(space_python), "-c", "import importlib.util as u; "
                          "print([m for m in ('torch', 'transformers', 'distillery') "
                          "if u.find_spec(m)])"], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.strip() == "[]"


def test_space_serves_pipeline_predictions(space_dir, space_python, tiny_run_dir):
    from gradio_client import Client

    split = prepared.read_split(tiny_run_dir / "data/prepared/eval.jsonl").subset(range(6))
    names = prepared.read_labels(tiny_run_dir / "data/prepared/labels.json")
    import onnxruntime as ort

    session = ort.InferenceSession(str(space_dir / "model.onnx"))
    tok = load_tokenizer(str(tiny_run_dir / "models/student"))
    logits = evaluate.onnx_logits(session, split, tok, 16, batch_size=1)
    proc, url = serve(space_python, space_dir)
    try:
        client = Client(url, verbose=False)
        for i, text in enumerate(split.texts):
            status, shown, probs = client.predict(text, api_name="/classify")
            want = names[int(np.argmax(logits[i]))]
            assert status == "" and shown.startswith(f"**{want}** · ")
            assert probs["label"] == want
        status, shown, _ = client.predict("", api_name="/classify")
        assert status == "Type a sentence first." and shown == ""
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_space_without_model_says_what_to_run(space_dir, space_python, tmp_path):
    broken = tmp_path / "space"
    shutil.copytree(space_dir, broken)
    (broken / "model.onnx").unlink()
    proc, url = serve(space_python, broken)
    try:
        with urllib.request.urlopen(url + "config", timeout=10) as r:
            config = r.read().decode()
        assert "model.onnx not found. Rebuild this folder with `dvc repro space`." in config
        assert "Traceback" not in config
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_space_under_load(space_dir, space_python, tmp_path):
    """32 clients for 3 s (then 3 s more beside a client pasting 1 MB texts), through the
    Gradio API of the Space's own venv: no errors, every paste refused with the message, fast
    alone and no slower than the visitors' answers under load (``scripts/space_load.py``, the
    30 s run of docs/demo-and-space.md). The README pins the building interpreter's Python."""
    card = (space_dir / "README.md").read_text()
    assert f'\npython_version: "{sys.version_info.major}.{sys.version_info.minor}"\n' in card
    assert json.loads((space_dir / "space.json").read_text())["max_input_chars"] == 10_000
    out = tmp_path / "load.json"
    subprocess.run([sys.executable, str(ROOT / "scripts/space_load.py"), str(space_dir),
                    "--python", str(space_python), "--clients", "32", "--seconds", "3",
                    "--rounds", "1", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=180)
    load = json.loads(out.read_text())
    for phase in ("plain", "with_pastes"):
        visitors = load[phase]["visitors"]
        assert visitors["errors"] == 0 and visitors["requests"] >= 32, visitors
    pastes = load["with_pastes"]["pastes"]
    assert pastes["errors"] == 0 and pastes["requests"] >= 1, pastes
    assert pastes["message"].startswith("The input is 1,048,576 characters long; this page "
                                        "takes at most 10,000")
    assert load["paste_alone_ms"]["max_ms"] < 1000
    assert pastes["p50_ms"] <= load["with_pastes"]["visitors"]["p99_ms"]
