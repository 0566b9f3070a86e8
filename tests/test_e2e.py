"""End to end: ``dvc repro`` of the whole pipeline on tiny params in a temporary repo copy.

Also checks the caching contract: a second ``dvc repro`` reruns only the cheap ``data`` stage
(``always_changed``, so an edited source file is noticed) and nothing downstream of it, and
changing a ``benchmark.*`` param reruns only ``benchmark`` (and ``report``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .stages.conftest import copy_project, tiny_params

pytestmark = pytest.mark.e2e

STAGES = ["data", "prepare", "hpo", "llm", "label", "baselines", "nas", "distill", "compress",
          "export", "benchmark", "report", "space"]


def dvc(*args: str, cwd: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:"
           + os.environ["PATH"]}
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout + out.stderr


def ran(log: str) -> list[str]:
    return re.findall(r"Running stage '([a-z_]+)'", log)


@pytest.fixture
def repo(tmp_path, tiny_teacher_dir, tiny_raw_dir) -> Path:
    work = copy_project(tmp_path / "repo")
    (work / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_teacher_dir, tiny_raw_dir)))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=work, check=True)  # DVCLive needs a rev
    return work


def test_dvc_repro_end_to_end(repo):
    log = dvc("repro", cwd=repo)
    assert ran(log) == STAGES
    bench = json.loads((repo / "metrics" / "benchmark.json").read_text())
    # The models learned the learnable tiny task: teacher, student and int8 student are all
    # well above chance (0.5) and close to each other.
    acc = {v: bench[v]["accuracy"] for v in ("teacher-torch-fp32", "student-torch-fp32",
                                             "student-onnx-int8", "teacher-onnx-int8")}
    assert min(acc.values()) >= 0.7, acc
    assert max(acc.values()) - min(acc.values()) <= 0.2, acc
    report = json.loads((repo / "metrics" / "report.json").read_text())
    text = (repo / "reports" / "results.md").read_text()
    assert report["recommended"] is not None  # tiny students all fit report.max_size_mb
    assert f"**Recommended: `{report['recommended']}`**" in text
    assert text.count("student-onnx-int8 ") >= 1
    for name in ("data", "prepare", "baselines", "nas", "hpo", "label", "distill", "compress",
                 "export", "report", "space"):
        assert (repo / "metrics" / f"{name}.json").is_file()
    assert "encoder" in json.loads((repo / "metrics" / "llm.json").read_text())["skipped"]
    assert (repo / "plots" / "classes.json").is_file()  # per class: a plot file, not metrics
    assert "baseline-tfidf" in bench and (repo / "reports" / "intervals.json").is_file()
    assert (repo / "plots" / "class_counts.csv").is_file()
    for png in ("nas.png", "hpo.png", "pareto.png", "confusion.png"):
        assert (repo / "plots" / png).stat().st_size > 0
    assert (repo / "dvc.lock").is_file()
    for journal in ("hpo", "nas"):  # trials persist for resume
        assert (repo / "models" / "search" / f"{journal}.journal").stat().st_size > 0

    assert ran(dvc("repro", cwd=repo)) == ["data"], "a second repro must change nothing"
    shown = dvc("plots", "show", "--json", cwd=repo)
    assert "student.csv" in shown
    plots = json.loads(shown)["data"]
    for plot in ("training_loss", "validation_score"):  # DVCLive curves of 3 training runs
        (shown_plot,) = plots[plot]
        values = shown_plot["content"]["data"]["values"]
        assert {v["filename"].split("/")[0] for v in values} == {"hpo", "distill", "compress"}

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["benchmark"]["repeats"] = 6
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc("repro", cwd=repo)) == ["data", "benchmark", "report", "space"]
    params["space"]["title"] = "Tiny"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc("repro", cwd=repo)) == ["data", "space"]
    assert "# Tiny\n" in (repo / "models" / "space" / "README.md").read_text()

    # A compress default changes compress's code only: nothing upstream of it is stale, and the
    # rerun stops there when the pruned student comes out the same (params.yaml sets the seed);
    # report reruns because compress's metrics carry its duration.
    config = repo / "src" / "distillery" / "config" / "compress.py"
    config.write_text(config.read_text().replace("    seed: int = 0", "    seed: int = 1", 1))
    status = json.loads(dvc("status", "--json", cwd=repo).splitlines()[-1])
    assert set(status) - {"data"} == {"compress"}, status
    assert ran(dvc("repro", cwd=repo)) == ["data", "compress", "report"]
