"""The whole chain with a causal-LM teacher (a tiny random Llama and its byte-level BPE,
saved as a folder): LoRA trials scored by lm-eval, generic-vs-specialised metrics, the
teacher saved in its classifier form, a student of another family (the tiny BERT, started
from its pre-trained weights) distilled from it, and the teacher exported and benchmarked
through its own tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from distillery.core.io import UserError
from distillery.export import onnx_export
from distillery.modeling import loading
from tests.stages.conftest import load_stage, tiny_params
from tests.stages.test_stages import files, metrics
from tests.unit.llm_toys import bpe_tokenizer, causal_lm


@pytest.fixture(scope="module")
def tiny_causal_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_causal")
    tok = bpe_tokenizer(bos=False)
    causal_lm("llama", len(tok), init=0.1).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def causal_dir(tmp_path, tiny_causal_dir, tiny_teacher_dir, tiny_raw_dir, monkeypatch) -> Path:
    p = tiny_params(tiny_causal_dir, tiny_raw_dir)
    p["teacher"].update(max_length=40, num_fewshot=1, verbalizers=[" negative", " positive"])
    p["distill"].update(student_init="pretrained", student_model=str(tiny_teacher_dir))
    p["hpo"].update(n_trials=2, n_initial=2, min_epochs=4.0, method=["lora"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_full_fine_tuning_of_a_causal_teacher_is_refused(causal_dir):
    p = yaml.safe_load(Path("params.yaml").read_text())
    p["hpo"]["method"] = ["full", "lora"]
    Path("params.yaml").write_text(yaml.safe_dump(p))
    with pytest.raises(UserError, match=r"hpo.method.*\[lora\]"):
        load_stage("hpo").main(["--data", "prep", "--trials", "t.journal", "--out", "teacher",
                                "--history", "h.csv", "--png", "h.png", "--metrics", "m.json",
                                "--curves", "c"])


def test_causal_teacher_chain(causal_dir, tiny_teacher_dir):
    load_stage("data").main(["--out", "raw", "--metrics", "m/data.json"])
    load_stage("prepare").main(["--raw", "raw", "--out", "prep", "--metrics", "m/prepare.json",
                                "--class-counts", "m/class_counts.csv"])
    load_stage("hpo").main(["--data", "prep", "--trials", "models/hpo.journal", "--out",
                            "models/teacher", "--history", "plots/hpo.csv", "--png",
                            "plots/hpo.png", "--metrics", "m/hpo.json", "--curves",
                            "plots/curves/hpo"])
    m = metrics("m/hpo.json")
    assert m["n_trials"] == 2 and m["teacher_kind"] == "causal"
    for key in ("base_zero_shot_acc", "base_few_shot_acc", "specialised_acc",
                "acc_gain_over_zero_shot", "base_word_perplexity",
                "specialised_word_perplexity", "word_perplexity_ratio", "teacher_lm_eval_acc"):
        assert isinstance(m[key], float), key
    assert m["few_shot_k"] == 1 and m["form_token_match"] == 1.0
    # The classifier form scores as lm-eval does: same accuracy on the eval split.
    assert m["teacher_eval_accuracy"] == pytest.approx(m["teacher_lm_eval_acc"], abs=1e-9)
    config = json.loads(Path("models/teacher/config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert loading.is_prompted(loading.load_classifier("models/teacher").config)
    assert (Path("plots/curves/hpo") / "plots/metrics/val/score.tsv").is_file()

    load_stage("label").main(["--data", "prep", "--teacher", "models/teacher", "--out", "logits",
                              "--metrics", "m/label.json"])
    # The logits every distilling stage reads score as lm-eval does.
    assert metrics("m/label.json")["teacher_eval_accuracy"] == pytest.approx(
        m["teacher_lm_eval_acc"], abs=1e-9)
    _llm_stage()
    # model2vec's static embeddings of a causal LM whose tokenizer has no [PAD] / [UNK]
    load_stage("baselines").main(["--data", "prep", "--teacher", "models/teacher", "--logits",
                                  "logits", "--out", "models/baselines", "--metrics",
                                  "m/baselines.json"])
    m = metrics("m/baselines.json")
    assert 0 <= m["static"]["eval_accuracy"] <= 1 and m["static"]["vocabulary"] > 0, m
    load_stage("nas").main(["--data", "prep", "--teacher", "models/teacher", "--logits",
                            "logits", "--trials",
                            "models/nas.journal", "--out", "models/arch.json", "--history",
                            "plots/nas.csv", "--png", "plots/nas.png", "--metrics",
                            "m/nas.json"])
    load_stage("distill").main(["--data", "prep", "--arch", "models/arch.json", "--teacher",
                                "models/teacher", "--logits", "logits", "--out", "models/student",
                                "--metrics", "m/distill.json", "--curves",
                                "plots/curves/distill"])
    m = metrics("m/distill.json")
    assert m["student_init"] == "pretrained"
    assert m["layer_wise"] is False  # default weights > 0, skipped: no teacher layers to match
    assert m["teacher_eval_accuracy"] == metrics("m/hpo.json")["teacher_eval_accuracy"]
    student = json.loads(Path("models/student/config.json").read_text())
    assert student["model_type"] == "bert"  # the student_model's family, with its tokenizer
    assert (loading.load_tokenizer("models/student").get_vocab()
            == loading.load_tokenizer(str(tiny_teacher_dir)).get_vocab())
    load_stage("compress").main(["--data", "prep", "--student", "models/student", "--logits",
                                 "logits", "--out", "models/pruned",
                                 "--metrics", "m/compress.json", "--curves",
                                 "plots/curves/compress"])
    load_stage("export").main(["--data", "prep", "--teacher", "models/teacher", "--student",
                               "models/student", "--pruned", "models/pruned", "--out",
                               "models/onnx", "--metrics", "m/export.json"])
    m = metrics("m/export.json")
    assert m["teacher_max_abs_diff"] < 1e-3 and m["teacher_agreement"] >= 0.99
    meta = onnx_export.read_metadata("models/onnx/teacher.onnx")
    assert json.loads(meta["inputs"]) == ["input_ids", "attention_mask"]
    assert meta["model_type"] == "llama"
    assert "teacher_int8.onnx" not in files("models/onnx")
    assert "fp32 only" in m["skipped"]["teacher_int8.onnx"]
    load_stage("benchmark").main(["--data", "prep", "--teacher", "models/teacher", "--student",
                                  "models/student", "--onnx", "models/onnx", "--metrics",
                                  "m/benchmark.json", "--baselines", "models/baselines",
                                  "--classes", "m/classes.json",
                                  "--intervals", "m/intervals.json",
                                  "--confusion-dir", "plots/confusion", "--table",
                                  "plots/bench.csv", "--confusion-png", "plots/confusion.png"])
    m = metrics("m/benchmark.json")
    teacher_acc = metrics("m/hpo.json")["teacher_eval_accuracy"]
    assert m["teacher-torch-fp32"]["accuracy"] == pytest.approx(teacher_acc)
    assert m["teacher-onnx-fp32"]["accuracy"] == pytest.approx(teacher_acc)
    assert m["device"] == "cpu" and m["teacher-torch-fp32"]["provider"] == "torch-cpu"
    assert "teacher.onnx" in files("models/onnx")


def _llm_stage() -> None:
    """Stage ``llm`` on the tiny specialised Llama: every variant measured, lm-eval equal to
    the pipeline, the benchmark and the answers written (random weights: tolerances off)."""
    p = yaml.safe_load(Path("params.yaml").read_text())
    p["llm"] = {"variants": ["fp32", "int8", "int4"], "base_variants": ["fp32"],
                "label_prompts": 3, "open_prompts": ["Hello"], "gen_tokens": 6,
                "eval_examples": 8, "bench_prompt_tokens": 8, "bench_new_tokens": 4,
                "bench_rounds": 1, "threads": 1, "max_accuracy_drop": 1.0, "min_agreement": 0.0,
                "max_ppl_ratio": 100.0, "min_greedy_match": 0.0}
    Path("params.yaml").write_text(yaml.safe_dump(p))
    load_stage("llm").main(["--teacher", "models/teacher", "--data", "prep", "--out",
                            "models/llm", "--metrics", "m/llm.json", "--plots", "plots/llm.csv",
                            "--report", "reports/llm.md"])
    m = metrics("m/llm.json")
    for v in ("specialised-onnx-fp32", "specialised-onnx-int8", "specialised-onnx-int4",
              "base-onnx-fp32"):
        assert m[f"{v}_lm_eval_max_ll_diff"] <= 1e-6, v
        assert (Path("models/llm") / f"{v}.onnx").is_file()
    assert m["specialised-onnx-fp32_agreement"] == 1.0
    assert m["specialised-onnx-fp32_greedy_match"] == 1.0
    assert m["specialised-onnx-fp32_decode_tps"] > 0 and "base-onnx-fp32_decode_tps" not in m
    assert m["specialised-torch-fp32_peak_rss_mb"] > 0
    text = Path("reports/llm.md").read_text()
    assert "## Answers side by side" in text and "| Hello |" in text


def test_causal_teacher_refuses_teacher_init_before_compute(causal_dir):
    p = yaml.safe_load(Path("params.yaml").read_text())
    p["distill"]["student_init"] = "teacher"
    Path("params.yaml").write_text(yaml.safe_dump(p))
    load_stage("data").main(["--out", "raw", "--metrics", "m/data.json"])
    load_stage("prepare").main(["--raw", "raw", "--out", "prep", "--metrics", "m/prepare.json",
                                "--class-counts", "m/class_counts.csv"])
    with pytest.raises(UserError, match="distill.student_init: .* encoder teachers"):
        load_stage("nas").main(["--data", "prep", "--teacher", "models/teacher", "--logits",
                                "logits", "--trials",
                                "models/nas.journal", "--out", "models/arch.json",
                                "--history", "plots/nas.csv", "--png", "plots/nas.png",
                                "--metrics", "m/nas.json"])
    assert not Path("m/nas.json").exists()
