"""Each stage's ``main()`` on tiny params, checking its exact outputs and metrics: one test per
stage on a shared chain (:class:`Chain`, run once per tiny dataset); then the stages' errors."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from transformers import T5Config

from distillery.core.io import UserError
from distillery.export import onnx_export

from .conftest import PAIR_DATA, ROOT, load_stage, tiny_params


def metrics(path: str) -> dict:
    return json.loads(Path(path).read_text())


def files(folder: str) -> set[str]:
    return {p.name for p in Path(folder).iterdir()}


HPO_ARGV = ["--data", "prep", "--trials", "models/hpo.journal", "--out", "models/teacher",
            "--history", "plots/hpo.csv", "--png", "plots/hpo.png", "--metrics", "m/hpo.json",
            "--curves", "plots/curves/hpo"]


def _data(pair: bool) -> None:
    load_stage("data").main(["--out", "raw", "--metrics", "m/data.json"])


def _prepare(pair: bool) -> None:
    load_stage("prepare").main(["--raw", "raw", "--out", "prep", "--metrics", "m/prepare.json",
                                "--class-counts", "m/class_counts.csv"])


def _baselines(pair: bool) -> None:
    load_stage("baselines").main(["--data", "prep", "--teacher", "models/teacher", "--logits",
                                  "logits", "--out", "models/baselines", "--metrics",
                                  "m/baselines.json"])


def _hpo(pair: bool) -> None:
    load_stage("hpo").main(HPO_ARGV)


def _label(pair: bool) -> None:
    load_stage("label").main(["--data", "prep", "--teacher", "models/teacher", "--out", "logits",
                              "--metrics", "m/label.json"])


def _nas(pair: bool) -> None:
    if pair:  # the other strategy and proxy: NSGA-II with cross-entropy proxies
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["nas"].update(strategy="nsga2", proxy="ce")
        Path("params.yaml").write_text(yaml.safe_dump(params))
    load_stage("nas").main(["--data", "prep", "--teacher", "models/teacher", "--logits",
                            "logits", "--trials", "models/nas.journal",
                            "--out", "models/arch.json", "--history",
                            "plots/nas.csv", "--png", "plots/nas.png", "--metrics", "m/nas.json"])


def _distill(pair: bool) -> None:
    load_stage("distill").main(["--data", "prep", "--arch", "models/arch.json", "--teacher",
                                "models/teacher", "--logits", "logits", "--out", "models/student",
                                "--metrics", "m/distill.json", "--curves",
                                "plots/curves/distill"])


def _compress(pair: bool) -> None:
    if pair:  # the other pruning method
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["compress"].update(method="unstructured")
        Path("params.yaml").write_text(yaml.safe_dump(params))
    load_stage("compress").main(["--data", "prep", "--student", "models/student", "--logits",
                                 "logits", "--out", "models/pruned",
                                 "--metrics", "m/compress.json", "--curves",
                                 "plots/curves/compress"])


def _export(pair: bool) -> None:
    load_stage("export").main(["--data", "prep", "--teacher", "models/teacher", "--student",
                               "models/student", "--pruned", "models/pruned", "--out",
                               "models/onnx", "--metrics", "m/export.json"])


def _benchmark(pair: bool) -> None:
    load_stage("benchmark").main(["--data", "prep", "--teacher", "models/teacher", "--student",
                                  "models/student", "--onnx", "models/onnx", "--baselines",
                                  "models/baselines", "--metrics",
                                  "m/benchmark.json", "--classes", "m/classes.json",
                                  "--intervals", "m/intervals.json",
                                  "--confusion-dir", "plots/confusion", "--table",
                                  "plots/bench.csv", "--confusion-png", "plots/confusion.png"])


def _report(pair: bool) -> None:
    load_stage("report").main(["--metrics-dir", "m", "--classes", "m/classes.json",
                               "--intervals", "m/intervals.json",
                               "--out", "reports/results.md",
                               "--png", "plots/pareto.png", "--metrics", "m/report.json"])


def _space(pair: bool) -> None:
    # The Space ships the recommended variant; its app answers as the pipeline does.
    load_stage("space").main(["--onnx", "models/onnx", "--tokenizer", "models/student",
                              "--data", "prep", "--report", "m/report.json", "--bench",
                              "m/benchmark.json", "--out", "models/space", "--metrics",
                              "m/space.json"])


STEPS = {name: globals()[f"_{name}"] for name in (
    "data", "prepare", "hpo", "label", "baselines", "nas", "distill", "compress", "export",
    "benchmark", "report", "space")}


class Chain:
    """The stages of one tiny dataset run once, in order, in one folder (each consumes the
    previous outputs, as ``dvc repro`` would); each test asks for the stage it checks."""

    def __init__(self, folder: Path, pair: bool) -> None:
        self.folder, self.pair, self.done = folder, pair, []

    def run(self, upto: str) -> bool:
        """Run the stages up to ``upto`` that have not run yet; returns ``pair``."""
        with contextlib.chdir(self.folder):
            for name in list(STEPS)[:list(STEPS).index(upto) + 1]:
                if name not in self.done:
                    STEPS[name](self.pair)
                    self.done.append(name)
        return self.pair


@pytest.fixture(scope="module", params=[
    pytest.param("sst2", marks=pytest.mark.xdist_group("chain-sst2")),
    pytest.param("pairs", marks=pytest.mark.xdist_group("chain-pairs"))])
def one_chain(request, tmp_path_factory, tiny_teacher_dir, tiny_raw_dir, tiny_pair_dir):
    """The chain on binary single sentences and on 3-class sentence pairs."""
    pair = request.param == "pairs"
    folder = tmp_path_factory.mktemp(f"chain-{request.param}")
    params = (tiny_params(tiny_teacher_dir, tiny_pair_dir, **PAIR_DATA) if pair
              else tiny_params(tiny_teacher_dir, tiny_raw_dir))
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return Chain(folder, pair)


@pytest.fixture
def chain(one_chain, monkeypatch) -> Chain:
    """The chain, with its folder as the working directory of the test's checks."""
    monkeypatch.chdir(one_chain.folder)
    return one_chain


def test_prepare(chain):
    """Four disjoint splits and the label names."""
    pair = chain.run("prepare")
    assert files("prep") == {"train.jsonl", "val.jsonl", "transfer.jsonl", "eval.jsonl",
                             "labels.json"}
    m = metrics("m/prepare.json")
    assert (m["train_count"], m["val_count"], m["transfer_count"]) == (120, 40, 60)
    names = json.loads(Path("prep/labels.json").read_text())["names"]
    assert len(names) == (3 if pair else 2)


def test_baselines(chain):
    """A TF-IDF model and a static student (model2vec of the tiny teacher, trained on its
    logits, int8 ONNX) per dataset, saved without pickle."""
    chain.run("baselines")
    m = metrics("m/baselines.json")
    assert m["tfidf"]["C"] in (1.0, 3.0, 10.0, 30.0, 100.0) and m["tfidf"]["features"] > 0
    assert 0 <= m["tfidf"]["eval_accuracy"] <= 1
    assert files("models/baselines/tfidf") == {"baseline.json", "vocabulary.json",
                                               "weights.safetensors"}
    assert files("models/baselines/static") == {"baseline.json", "model.onnx",
                                                "tokenizer.json"}
    assert m["static"]["dims"] == 8 and 0 <= m["static"]["eval_accuracy"] <= 1


def test_hpo(chain):
    """The searched teacher: merged, labelled, its trial and final fidelity; a rerun resumes
    every trial from the journal."""
    pair = chain.run("hpo")
    names = json.loads(Path("prep/labels.json").read_text())["names"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files("models/teacher")
    assert not any("adapter" in f for f in files("models/teacher")), "adapter must be merged"
    config = json.loads(Path("models/teacher/config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(names))] == names
    m = metrics("m/hpo.json")
    assert {"best_method", "best_lr", "best_head_lr", "best_trial_score",
            "teacher_val_score", "teacher_eval_accuracy", "teacher_eval_macro_f1",
            "n_trials", "n_pruned", "best_weight_decay", "on_bounds_lr", "on_bounds_full_lr",
            "trial_examples", "trial_steps", "final_steps", "final_best_step"} <= set(m)
    assert m["n_trials"] == 3 and m["n_resumed"] == 0
    assert (m["trial_examples"], m["trial_steps"], m["final_steps"]) == (40, 20, 60)
    assert 0 < m["final_best_step"] <= m["final_steps"]
    assert m["retrain_drop"] == pytest.approx(m["best_trial_score"] - m["teacher_val_score"],
                                              abs=1e-6)
    if not pair:  # rerun: every trial is in the journal, none is trained again
        load_stage("hpo").main(HPO_ARGV)
        m2 = metrics("m/hpo.json")
        assert m2["n_resumed"] == 3 and m2["best_trial"] == m["best_trial"]


@pytest.mark.parametrize("one_chain", [  # one chain suffices: its retrain is the quicker
    pytest.param("pairs", marks=pytest.mark.xdist_group("chain-pairs"))], indirect=True)
def test_hpo_storage_named_by_the_environment(chain, pg_url, monkeypatch):
    """``hpo.storage: env:NAME``: the database URL (password included) is read at run time, so
    it is in no params value and no output; the study's name leaves the storage out, so the
    trials copied from the journal into PostgreSQL are all resumed, none trained again."""
    import optuna

    chain.run("hpo")
    journal = optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend("models/hpo.journal"))
    (name,) = optuna.get_all_study_names(journal)
    secret = "s3cret-pw"
    url = pg_url.replace("postgres@", f"postgres:{secret}@")
    optuna.copy_study(from_study_name=name, from_storage=journal, to_storage=url)
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["hpo"]["storage"] = "env:DISTILLERY_STORAGE"
    Path("params-db.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("DISTILLERY_STORAGE", url)
    argv = ["--data", "prep", "--trials", "models/db/unused.journal", "--out", "models/db/teacher",
            "--history", "db/hpo.csv", "--png", "db/hpo.png", "--metrics", "db/hpo.json",
            "--curves", "db/curves", "--params", "params-db.yaml"]
    load_stage("hpo").main(argv)
    m = metrics("db/hpo.json")
    assert m["n_resumed"] == m["n_trials"] == 3  # every trial from the copy, none run now
    assert m["best_trial"] == metrics("m/hpo.json")["best_trial"]
    assert not Path("models/db/unused.journal").exists()
    written = [f for d in ("db", "models/db") for f in Path(d).rglob("*") if f.is_file()]
    assert written and not [f for f in written + [Path("params-db.yaml")]
                            if secret.encode() in f.read_bytes()]


def test_label(chain):
    """The teacher's logits on every split, scored as stage ``hpo`` scored it."""
    chain.run("label")
    assert files("logits") == {"train.npy", "transfer.npy", "val.npy", "eval.npy",
                               "logits.json"}
    m = metrics("m/label.json")
    assert (m["n_train"], m["n_transfer"], m["n_val"]) == (120, 60, 40)
    assert m["teacher_eval_accuracy"] == metrics("m/hpo.json")["teacher_eval_accuracy"]


def test_nas(chain):
    """A valid architecture, every candidate in the history (NSGA-II with cross-entropy
    proxies on pairs)."""
    pair = chain.run("nas")
    arch = json.loads(Path("models/arch.json").read_text())
    assert arch["genome"]["hidden_size"] % arch["genome"]["num_attention_heads"] == 0
    assert Path("plots/nas.png").stat().st_size > 0
    header = Path("plots/nas.csv").read_text().splitlines()[0].split(",")
    assert {"generation", "score", "n_params", "latency_ms", "fitness"} <= set(header)
    assert len(Path("plots/nas.csv").read_text().splitlines()) == 1 + 3 * 2
    m = metrics("m/nas.json")
    assert m["n_candidates"] == 6 and m["proxy"] == ("ce" if pair else "kd")
    assert 1 <= m["n_pareto"] <= m["n_unique"]


def test_distill(chain):
    """A student that learns the tiny task, saved with the label names."""
    pair = chain.run("distill")
    names = json.loads(Path("prep/labels.json").read_text())["names"]
    m = metrics("m/distill.json")
    # Both models learn the learnable tiny task (chance: 0.5 binary, 0.33 for 3 classes).
    floor = 0.5 if pair else 0.7
    assert m["teacher_eval_accuracy"] >= floor and m["student_eval_accuracy"] >= floor, m
    assert {"student_eval_accuracy", "student_eval_macro_f1", "teacher_eval_macro_f1"} <= set(m)
    assert m["transfer_examples"] == 120 + 60
    config = json.loads(Path("models/student/config.json").read_text())
    assert config["label2id"] == {n: i for i, n in enumerate(names)}


def test_compress(chain):
    """Structured pruning keeps the asked-for heads and neurons (unstructured on pairs: the
    sparsity)."""
    pair = chain.run("compress")
    m = metrics("m/compress.json")
    common = {"method", "n_params_before", "n_params_after", "param_reduction", "metric",
              "eval_score_before", "eval_score_pruned", "eval_score_after", "eval_accuracy",
              "eval_macro_f1", "recovery_steps", "duration_s"}
    if pair:
        assert set(m) >= common | {"target_sparsity", "achieved_sparsity"}
        assert m["achieved_sparsity"] == pytest.approx(0.3, abs=0.02)
        assert m["n_params_after"] == m["n_params_before"]
    else:
        assert set(m) >= common | {"keep_heads", "keep_neurons", "heads_kept", "neurons_kept"}
        student = json.loads(Path("models/student/config.json").read_text())
        heads, ffn = student["num_attention_heads"], student["intermediate_size"]
        n_layers = student["num_hidden_layers"]
        keep = yaml.safe_load(Path("params.yaml").read_text())["compress"]
        assert m["heads_kept"] == [max(1, round(heads * keep["keep_heads"]))] * n_layers
        assert m["neurons_kept"] == [max(1, round(ffn * keep["keep_neurons"]))] * n_layers
        assert m["n_params_after"] < m["n_params_before"] and m["param_reduction"] > 0
        pruned = json.loads(Path("models/pruned/config.json").read_text())
        assert pruned["distillery_pruned"] == {"heads": m["heads_kept"],
                                               "intermediate": m["neurons_kept"]}


def test_export(chain):
    """Every variant's file, within tolerance of its torch source, with its metadata."""
    pair = chain.run("export")
    names = json.loads(Path("prep/labels.json").read_text())["names"]
    assert files("models/onnx") == {
        "teacher.onnx", "teacher_int8.onnx", "student.onnx", "student_int8.onnx",
        "student_int8_dynamic.onnx", "student_int8_per_channel.onnx", "student_int8_static.onnx",
        "student_fp16.onnx", "student_pruned.onnx", "student_pruned_int8.onnx",
        "student_pruned_vocab_int8.onnx"}
    m = metrics("m/export.json")
    for name in ("teacher", "student", "student_pruned"):
        assert m[f"{name}_max_abs_diff"] < 1e-3 and m[f"{name}_agreement"] >= 0.99
    for name in ("teacher_int8", "student_int8", "student_pruned_vocab_int8"):  # the gate is on
        assert m[f"{name}_agreement"] >= 0.9
    assert m["vocab_vocab_after"] < m["vocab_vocab_before"]
    assert m["vocab_extra"] == 2 and m["vocab_vocab_after"] == m["vocab_used"] + 2
    assert ("token_type_ids" in m["inputs"]) == pair
    meta = onnx_export.read_metadata("models/onnx/student_int8.onnx")
    assert json.loads(meta["labels"]) == names


def test_benchmark(chain):
    """Every variant scored and timed; quantised models still work; per-class and confusion
    files."""
    pair = chain.run("benchmark")
    names = json.loads(Path("prep/labels.json").read_text())["names"]
    floor = 0.5 if pair else 0.7
    m = metrics("m/benchmark.json")
    required = {"teacher-torch-fp32", "teacher-onnx-fp32", "teacher-onnx-int8",
                "student-torch-fp32", "student-onnx-fp32", "student-onnx-int8",
                "student-onnx-int8-dynamic", "student-onnx-int8-per-channel",
                "student-onnx-int8-static", "student-pruned-onnx-fp32",
                "student-pruned-onnx-int8", "student-pruned-vocab-onnx-int8"}
    assert required <= set(m)
    for name in required:
        assert set(m[name]) == {"accuracy", "macro_f1", "latency_ms_p50", "latency_ms_p95",
                                "e2e_latency_ms_p50", "e2e_latency_ms_p95",
                                "throughput_per_s", "size_mb", "n_params", "provider"}
        assert m[name]["latency_ms_p50"] > 0 and m[name]["size_mb"] > 0
        assert m[name]["e2e_latency_ms_p50"] > 0  # text in, label out, same rounds
    ints = metrics("m/intervals.json")
    for name in required:
        lo, hi = ints["scores"][name]["accuracy"]
        assert lo <= m[name]["accuracy"] <= hi
    assert all(len(ints["rounds_ms"][name]) == 2 for name in required)  # benchmark.rounds
    paired = ints["paired"]
    assert {"student-onnx-int8 vs teacher-onnx-int8", "student-onnx-int8-dynamic vs "
            "student-onnx-int8", "student-onnx-fp32 vs student-pruned-onnx-fp32"} <= set(paired)
    d = paired["student-onnx-int8 vs teacher-onnx-int8"]
    metric = m["metric"]
    assert d["diff"] == pytest.approx(m["student-onnx-int8"][metric]
                                      - m["teacher-onnx-int8"][metric], abs=1e-6)
    assert m["student-onnx-int8"]["size_mb"] < m["student-onnx-fp32"]["size_mb"]
    assert m["teacher-onnx-fp32"]["n_params"] == m["teacher-torch-fp32"]["n_params"]
    assert m["student-pruned-vocab-onnx-int8"]["n_params"] < m["student-onnx-fp32"]["n_params"]
    sizes = metrics("m/export.json")
    assert m["teacher-onnx-fp32"]["size_mb"] == sizes["teacher_size_mb"]  # each file its own
    vocab = m["student-pruned-vocab-onnx-int8"]
    assert vocab["size_mb"] == sizes["student_pruned_vocab_int8_size_mb"]
    import torch

    if torch.cuda.is_available():
        assert "student-onnx-int8@cuda" in m
    else:
        assert m["skipped_providers"]["cuda"].startswith("no CUDA device")
        assert not any("@cuda" in k for k in m)
    classes = metrics("m/classes.json")
    assert set(classes) == {"teacher", "student"} and list(classes["student"]) == names
    n_eval = metrics("m/prepare.json")["eval_count"]
    assert sum(c["support"] for c in classes["teacher"].values()) == n_eval
    rows = Path("plots/confusion/student.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted" and len(rows) == 1 + n_eval
    assert Path("plots/confusion.png").stat().st_size > 0

    for name in ("teacher-onnx-int8", "student-onnx-int8", "student-pruned-vocab-onnx-int8"):
        assert m[name]["accuracy"] >= floor, (name, m[name])  # quantised models still work
    assert abs(m["student-onnx-int8"]["accuracy"] - m["student-onnx-fp32"]["accuracy"]) <= 0.1
    assert m["skipped_variants"] == {"student-onnx-fp16": "fp16 runs on GPU providers only"}
    assert m["baseline-static"]["provider"] == "cpu"  # ONNX Runtime, one thread
    tfidf = m["baseline-tfidf"]
    assert tfidf["provider"] == "sklearn"
    assert tfidf["accuracy"] == metrics("m/baselines.json")["tfidf"]["eval_accuracy"]
    assert tfidf["e2e_latency_ms_p50"] == tfidf["latency_ms_p50"] > 0
    assert "student-onnx-int8 vs baseline-tfidf" in ints["paired"]
    assert m["threads"]["torch"] == m["threads"]["onnxruntime"] >= 1


def test_report(chain):
    """Nine targets checked and the best student within the size limit recommended."""
    chain.run("report")
    names = json.loads(Path("prep/labels.json").read_text())["names"]
    bench = metrics("m/benchmark.json")
    m = metrics("m/report.json")
    met = [k for k in m if k.endswith("_met") and k != "targets_met"]
    assert m["targets_total"] == len(met) == 9
    assert m["targets_met"] == sum(m[k] for k in met)
    assert m["teacher_score_met"] == (bench["teacher-torch-fp32"][m["metric"]] >= 0.83)
    # the recommended variant: the best student within report.max_size_mb (9 MB: all tiny)
    students = {k: v for k, v in bench.items() if isinstance(v, dict) and "size_mb" in v
                and not k.startswith("teacher")}
    assert m["recommended"] in students
    assert bench[m["recommended"]][m["metric"]] == max(v[m["metric"]] for v in students.values())
    text = Path("reports/results.md").read_text()
    assert "## Targets" in text and "student-onnx-int8 " in text
    assert "end to end" in text and "paired difference [95% CI]" in text
    rec = bench[m["recommended"]]
    assert f"| {rec[m['metric']]:.4f} [" in text  # the score with its interval
    assert Path("plots/pareto.png").stat().st_size > 0
    assert all(f"| {n} |" in text for n in names)


def test_space(chain):
    """The Space ships the recommended variant and answers as the pipeline does."""
    pair = chain.run("space")
    m = metrics("m/report.json")
    n_eval = metrics("m/prepare.json")["eval_count"]
    assert files("models/space") == {"app.py", "requirements.txt", "model.onnx",
                                     "tokenizer.json", "examples.jsonl", "space.json",
                                     "README.md"}
    space = metrics("m/space.json")
    assert space["variant"] == m["recommended"] and space["examples"] == 8
    assert space["app_matches_pipeline"] == space["eval_examples"] == n_eval
    card = Path("models/space/README.md").read_text()
    assert card.startswith("---\ntitle: ") and "sdk: \"gradio\"" in card
    assert f"| {m['recommended']} |" in card
    reqs = Path("models/space/requirements.txt").read_text().split()
    assert [r.split("==")[0] for r in reqs] == ["gradio", "onnxruntime", "tokenizers", "numpy"]
    examples = [json.loads(x) for x in Path("models/space/examples.jsonl").read_text().split("\n")
                if x]
    assert len(examples) == 8 and all(("text_pair" in e) == pair for e in examples)


def test_export_fails_past_tolerance(stage_dir, tiny_teacher_dir):
    """A tolerance no real model meets stops the stage and leaves no output folder."""
    prep = stage_dir / "prep"
    load_stage("data").main(["--out", "raw", "--metrics", "m/data.json"])
    load_stage("prepare").main(["--raw", "raw", "--out", str(prep), "--metrics", "m/p.json",
                                "--class-counts", "m/c.csv"])
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["export"]["int8_max_rel_diff"] = 1e-9
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
        ("hpo", "sampler", "cmaes", "hpo.sampler: got 'cmaes'"),
        ("task", "metric", "f1", "task.metric: got 'f1', expected one of"),
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
             "compress": "compress", "benchmark": "benchmark", "task": "nas"}[section]
    argv = {
        "prepare": ["--raw", "missing", "--out", "o", "--metrics", "m.json", "--class-counts",
                    "c.csv"],
        "nas": ["--data", "missing", "--teacher", "t", "--logits", "l", "--trials", "j",
                "--out", "o",
                "--history", "h", "--png", "p",
                "--metrics", "m.json"],
        "hpo": ["--data", "missing", "--trials", "j", "--out", "o", "--history", "h",
                "--png", "p", "--metrics", "m.json", "--curves", "c"],
        "distill": ["--data", "missing", "--arch", "a", "--teacher", "t", "--logits", "l",
                    "--out", "o",
                    "--metrics", "m.json", "--curves", "c"],
        "compress": ["--data", "missing", "--student", "s", "--logits", "l", "--out", "o",
                     "--metrics", "m.json", "--curves", "c"],
        "benchmark": ["--data", "missing", "--teacher", "t", "--student", "s", "--onnx", "x",
                      "--baselines", "b",
                      "--metrics", "m.json", "--classes", "c.json", "--intervals", "i.json",
                      "--confusion-dir", "c",
                      "--table", "t.csv", "--confusion-png", "c.png"],
    }[stage]
    with pytest.raises(ValueError) as err:
        load_stage(stage).main(argv)
    assert expected in str(err.value)
    assert not Path("m.json").exists()


def test_missing_data_file_message(stage_dir):
    with pytest.raises(UserError, match="dvc repro"):
        load_stage("prepare").main(["--raw", "nowhere", "--out", "o", "--metrics", "m.json",
                                    "--class-counts", "c.csv"])


def test_user_error_ends_with_the_message_alone(stage_dir):
    """Run as DVC runs it: a bad param prints one message, no traceback, exit status 1."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["distill"]["alpha"] = 1.5
    Path("params.yaml").write_text(yaml.safe_dump(params))
    out = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "distill.py"), "--data", "d", "--arch", "a",
         "--teacher", "t", "--logits", "l", "--out", "o", "--metrics", "m.json", "--curves", "c"],
        capture_output=True, text=True, env={**os.environ, "DISTILLERY_DEBUG": "0"},
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "error: invalid params.yaml section 'distill'" in out.stderr
    assert "distill.alpha: got 1.5" in out.stderr


def test_unsupported_teacher_family_stops_before_compute(stage_dir, tmp_path):
    """An encoder-decoder teacher is refused with the supported encoders and decoders."""
    folder = tmp_path / "t5"
    T5Config(d_model=16, num_layers=1, num_heads=2, vocab_size=50).save_pretrained(folder)
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["teacher"]["model"] = str(folder)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ValueError, match="'t5'.*supported encoder.*bert.*causal LM.*llama"):
        load_stage("hpo").main(["--data", "missing", "--trials", "j", "--out", "o",
                                "--history", "h", "--png", "p", "--metrics", "m.json",
                                "--curves", "c"])
    assert not Path("m.json").exists()


def test_hpo_warns_when_trial_and_final_fidelity_disagree():
    """The DistilBERT study: trial 0.826, retrained teacher 0.816 on val; a 77-intent set:
    trials at most 0.487, the retrained winner 0.83."""
    from distillery.teachers.hpo import fidelity_warning as warning

    assert warning(0.80, 0.816, "accuracy") is None  # retrain a little better than the trial
    assert warning(0.80, 0.795, "accuracy") is None  # within the tolerance (0.01)
    assert warning(0.826, 0.816, "accuracy") is not None  # that run: just over 0.01
    msg = warning(0.826, 0.789, "accuracy")
    assert msg is not None and "0.037 below" in msg and "hpo.n_trials" in msg
    msg = warning(0.487, 0.83, "macro_f1")
    assert msg is not None and "0.343 above" in msg and "hpo.trial_examples" in msg
