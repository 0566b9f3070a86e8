"""Each stage's ``main()`` on tiny params, in order, checking its exact outputs and metrics.

The stages run as one chain (each consumes the previous outputs), as ``dvc repro`` would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import load_stage


def metrics(path: str) -> dict:
    return json.loads(Path(path).read_text())


def files(folder: str) -> set[str]:
    return {p.name for p in Path(folder).iterdir()}


def test_pipeline_stages_in_order(stage_dir):
    load_stage("fetch").main(["--out", "raw", "--metrics", "m/fetch.json"])
    assert files("raw") == {"train.tsv", "dev.tsv"}
    assert metrics("m/fetch.json")["source"].startswith("mirror:")

    load_stage("prepare").main(["--raw", "raw", "--out", "prep", "--metrics", "m/prepare.json"])
    assert files("prep") == {"train.tsv", "val.tsv", "transfer.tsv", "eval.tsv"}
    m = metrics("m/prepare.json")
    counts = (m["train_count"], m["val_count"], m["transfer_count"], m["eval_count"])
    assert counts == (120, 40, 60, 60)

    load_stage("nas").main(["--data", "prep", "--out", "models/arch.json", "--history",
                            "plots/nas.csv", "--png", "plots/nas.png", "--metrics", "m/nas.json"])
    arch = json.loads(Path("models/arch.json").read_text())
    assert arch["genome"]["hidden_size"] % arch["genome"]["num_attention_heads"] == 0
    assert Path("plots/nas.png").stat().st_size > 0
    header = Path("plots/nas.csv").read_text().splitlines()[0].split(",")
    assert {"generation", "accuracy", "n_params", "latency_ms", "fitness"} <= set(header)
    assert len(Path("plots/nas.csv").read_text().splitlines()) == 1 + 3 * 2
    assert metrics("m/nas.json")["n_candidates"] == 6

    load_stage("hpo").main(["--data", "prep", "--out", "models/teacher", "--history",
                            "plots/hpo.csv", "--png", "plots/hpo.png", "--metrics", "m/hpo.json"])
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files("models/teacher")
    assert not any("adapter" in f for f in files("models/teacher")), "adapter must be merged"
    m = metrics("m/hpo.json")
    assert {"best_lr", "best_rank", "best_alpha", "best_dropout", "best_trial_score",
            "teacher_val_accuracy", "teacher_dev_accuracy", "n_trials"} <= set(m)
    assert m["n_trials"] == 3

    load_stage("distill").main(["--data", "prep", "--arch", "models/arch.json", "--teacher",
                                "models/teacher", "--out", "models/student",
                                "--metrics", "m/distill.json"])
    m = metrics("m/distill.json")
    assert 0 <= m["student_dev_accuracy"] <= 1
    assert m["transfer_examples"] == 120 + 60
    assert m["student_n_params"] > 0

    load_stage("compress").main(["--data", "prep", "--student", "models/student", "--teacher",
                                 "models/teacher", "--out", "models/pruned",
                                 "--metrics", "m/compress.json"])
    m = metrics("m/compress.json")
    assert m["achieved_sparsity"] == pytest.approx(0.3, abs=0.02)

    load_stage("export").main(["--data", "prep", "--teacher", "models/teacher", "--student",
                               "models/student", "--pruned", "models/pruned", "--out",
                               "models/onnx", "--metrics", "m/export.json"])
    assert files("models/onnx") == {"teacher.onnx", "student.onnx", "student_pruned.onnx",
                                    "student_int8.onnx"}
    m = metrics("m/export.json")
    for name in ("teacher", "student", "student_pruned"):
        assert m[f"{name}_max_abs_diff"] < 1e-3 and m[f"{name}_agreement"] >= 0.99

    load_stage("benchmark").main(["--data", "prep", "--teacher", "models/teacher", "--student",
                                  "models/student", "--onnx", "models/onnx", "--metrics",
                                  "m/benchmark.json", "--table", "plots/bench.csv",
                                  "--png", "plots/pareto.png"])
    m = metrics("m/benchmark.json")
    required = {"teacher-torch-fp32", "teacher-onnx-fp32", "student-torch-fp32",
                "student-onnx-fp32", "student-pruned-onnx-fp32", "student-onnx-int8"}
    assert required <= set(m)
    for name in required:
        assert set(m[name]) == {"accuracy", "latency_ms_p50", "latency_ms_p95",
                                "throughput_per_s", "size_mb", "n_params", "provider"}
        assert m[name]["latency_ms_p50"] > 0 and m[name]["size_mb"] > 0
    assert m["student-onnx-int8"]["size_mb"] < m["student-onnx-fp32"]["size_mb"]
    assert "cuda" in m["skipped_providers"] or "student-onnx-int8@cuda" in m

    load_stage("report").main(["--metrics-dir", "m", "--out", "reports/results.md",
                               "--metrics", "m/report.json"])
    m = metrics("m/report.json")
    assert m["targets_total"] == 4 and 0 <= m["targets_met"] <= 4
    text = Path("reports/results.md").read_text()
    assert "## Targets" in text and "| student-onnx-int8 |" in text


def test_export_fails_past_tolerance(stage_dir, tiny_teacher_dir):
    """A tolerance no real model meets stops the stage and leaves no output folder."""
    prep = stage_dir / "prep"
    load_stage("fetch").main(["--out", "raw", "--metrics", "m/fetch.json"])
    load_stage("prepare").main(["--raw", "raw", "--out", str(prep), "--metrics", "m/p.json"])
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["export"]["int8_max_abs_diff"] = 1e-9
    Path("params.yaml").write_text(yaml.safe_dump(params))
    t = str(tiny_teacher_dir)
    with pytest.raises(RuntimeError, match="student_int8: max"):
        load_stage("export").main(["--data", str(prep), "--teacher", t, "--student", t,
                                   "--pruned", t, "--out", "onnx", "--metrics", "m/e.json"])
    assert not Path("onnx").exists() and not Path("m/e.json").exists()


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("prepare", "n_train", -5, "prepare.n_train: got -5"),
        ("nas", "strategy", "genetic", "nas.strategy: got 'genetic', expected one of"),
        ("hpo", "sampler", "tpe", "hpo.sampler: got 'tpe'"),
        ("distill", "alpha", 1.5, "distill.alpha: got 1.5, expected a value in [0.0, 1.0]"),
        ("compress", "sparsity", "half", "compress.sparsity: got 'half', expected float"),
        ("benchmark", "providers", ["gpu"], "benchmark.providers: got ['gpu']"),
        ("nas", "bogus", 1, "nas.bogus: unknown key"),
    ],
)
def test_bad_params_stop_stage_before_compute(stage_dir, section, key, value, expected):
    params = yaml.safe_load(Path("params.yaml").read_text())
    params[section][key] = value
    Path("params.yaml").write_text(yaml.safe_dump(params))
    stage = {"prepare": "prepare", "nas": "nas", "hpo": "hpo", "distill": "distill",
             "compress": "compress", "benchmark": "benchmark"}[section]
    argv = {
        "prepare": ["--raw", "missing", "--out", "o", "--metrics", "m.json"],
        "nas": ["--data", "missing", "--out", "o", "--history", "h", "--png", "p",
                "--metrics", "m.json"],
        "hpo": ["--data", "missing", "--out", "o", "--history", "h", "--png", "p",
                "--metrics", "m.json"],
        "distill": ["--data", "missing", "--arch", "a", "--teacher", "t", "--out", "o",
                    "--metrics", "m.json"],
        "compress": ["--data", "missing", "--student", "s", "--teacher", "t", "--out", "o",
                     "--metrics", "m.json"],
        "benchmark": ["--data", "missing", "--teacher", "t", "--student", "s", "--onnx", "x",
                      "--metrics", "m.json", "--table", "t.csv", "--png", "p.png"],
    }[stage]
    with pytest.raises(ValueError) as err:
        load_stage(stage).main(argv)
    assert expected in str(err.value)
    assert not Path("m.json").exists()


def test_missing_data_file_message(stage_dir):
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        load_stage("prepare").main(["--raw", "nowhere", "--out", "o", "--metrics", "m.json"])
