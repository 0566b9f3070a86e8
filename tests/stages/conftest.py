"""Fixtures for stage tests: a tiny params.yaml pointing at the tiny teacher and a tiny dataset."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def copy_project(work: Path) -> Path:
    """A runnable DVC project in ``work``: ``dvc.yaml``, the stages, the sources, the plot
    templates and a ``.dvc/config`` without analytics or update checks (add params and git)."""
    work.mkdir()
    for item in ("dvc.yaml", "stages", "src"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    shutil.copytree(ROOT / ".dvc" / "plots", work / ".dvc" / "plots")
    (work / ".dvc" / "config").write_text("[core]\n    analytics = false\n    autostage = true\n"
                                          "    check_update = false\n")
    return work


# ``data`` params of the tiny 3-class sentence-pair set (``tiny_pair_dir``: csv, string labels).
PAIR_DATA = {"text_column": "premise", "text_pair_column": "hypothesis", "label_names": None}


def tiny_params(teacher_dir: Path, source: Path, **data) -> dict:
    """The repo's params.yaml shrunk to a handful of CPU steps per stage.

    ``source`` is the ``data.source`` folder; ``data`` overrides other ``data`` keys.
    """
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["data"].update(source=str(source), **data)
    p["teacher"].update(model=str(teacher_dir), max_length=16)
    p["prepare"].update(n_train=120, n_val=40, n_transfer=60)
    p["nas"].update(population=3, generations=2, elite=1, proxy_steps=2, latency_repeats=2,
                    min_speedup=0.1,
                    search_space={"num_hidden_layers": [1, 2], "hidden_size": [16, 32],
                                  "num_attention_heads": [2, 4], "intermediate_size": [16, 37],
                                  "head_size": 8})
    # Learning rates and steps large enough that the tiny models learn the tiny tasks (the
    # stage test asserts it), with the export's int8 agreement gate left on.
    p["hpo"].update(n_trials=3, n_initial=2, trial_examples=40, min_epochs=16.0,
                    steps_per_class=1, evals=3, patience=0, lr=[5e-3, 2e-2],
                    full_lr=[5e-3, 2e-2], head_lr=[5e-3, 2e-2], rank=[2, 4], alpha=[4, 8],
                    target_modules=None)
    p["distill"].update(epochs=6.0, lr=5e-3)
    p["baselines"].update(static_dims=8, static_epochs=2.0)
    p["compress"].update(recovery_steps=10, lr=5e-3, importance_batches=2, hidden_weight=1.0)
    p["export"].update(int8_max_rel_diff=10.0, calibration_examples=16, vocab_extra=2)
    p["benchmark"].update(warmup=1, repeats=4, rounds=2, batch_size=4, throughput_batches=2)
    return p


@pytest.fixture
def stage_dir(tmp_path, tiny_teacher_dir, tiny_raw_dir, monkeypatch) -> Path:
    """A working folder with a tiny params.yaml; the cwd for the stage under test."""
    params = tiny_params(tiny_teacher_dir, tiny_raw_dir)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load_stage(name: str, folder: str = "stages"):
    """Import ``<folder>/<name>.py`` as a module (stages are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
