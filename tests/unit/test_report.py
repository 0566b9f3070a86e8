"""The recommended variant, targets and the Markdown results built from benchmark metrics."""

from __future__ import annotations

import dataclasses

import pytest

from distillery.config.report import ReportParams
from distillery.measure import report

P = ReportParams(max_size_mb=10.0, min_teacher_score=0.83, min_student_ratio=0.95,
                 min_speedup_same_runtime=4.0, min_speedup=8.0, min_size_ratio=8.0,
                 max_fused_latency_ratio=0.85, max_fused_score_drop=0.005,
                 min_pruned_speedup=1.5, max_pruned_score_drop=0.01)


def row(acc, lat, mb, provider="cpu", f1=None):
    return {"accuracy": acc, "macro_f1": acc - 0.02 if f1 is None else f1,
            "latency_ms_p50": lat, "latency_ms_p95": lat * 1.2, "throughput_per_s": 100.0,
            "size_mb": mb, "n_params": 1_000_000, "provider": provider}


def bench(**over):
    rows = {
        "teacher-torch-fp32": row(0.85, 10.0, 90.0, "torch-cpu"),
        "teacher-onnx-fp32": row(0.85, 5.0, 90.0),
        "teacher-onnx-int8": row(0.84, 2.0, 23.0),
        "student-torch-fp32": row(0.83, 2.0, 40.0, "torch-cpu"),
        "student-onnx-fp32": row(0.83, 0.9, 40.0),
        "student-onnx-int8": row(0.825, 0.4, 10.0),
        "student-onnx-int8-dynamic": row(0.826, 0.5, 10.0),
        "student-pruned-onnx-fp32": row(0.825, 0.5, 30.0),
        "student-pruned-vocab-onnx-int8": row(0.82, 0.25, 4.0),
    }
    for name, changes in over.items():
        rows[name.replace("_", "-")] = {**rows[name.replace("_", "-")], **changes}
    return {**rows, "skipped_providers": {"cuda": "no GPU"}, "duration_s": 3.0,
            "threads": {"torch": 2, "onnxruntime": 2}, "rounds": 5}


def test_counterpart_is_the_teacher_in_the_same_runtime_precision_and_provider():
    assert report.counterpart("student-pruned-vocab-onnx-int8") == "teacher-onnx-int8"
    assert report.counterpart("student-onnx-int8-dynamic") == "teacher-onnx-int8"
    assert report.counterpart("student-torch-fp32") == "teacher-torch-fp32"
    assert report.counterpart("student-onnx-fp16@cuda") == "teacher-onnx-fp16@cuda"
    assert report.counterpart("nonsense") is None


def test_recommend_picks_the_best_score_within_the_limits():
    b = bench()
    assert report.recommend(b, P, "accuracy") == "student-onnx-int8-dynamic"  # <= 10 MB
    tight = dataclasses.replace(P, max_size_mb=5.0)
    assert report.recommend(b, tight, "accuracy") == "student-pruned-vocab-onnx-int8"
    fast = dataclasses.replace(P, max_size_mb=None, max_latency_ms=0.45)
    assert report.recommend(b, fast, "accuracy") == "student-onnx-int8"
    assert report.recommend(b, dataclasses.replace(P, max_size_mb=1.0), "accuracy") is None
    free = dataclasses.replace(P, max_size_mb=None)
    assert report.recommend(b, free, "accuracy") == "student-onnx-fp32"  # tie: the faster


def test_targets_measured_values_against_the_same_runtime_teacher():
    rec = "student-pruned-vocab-onnx-int8"
    t = {x.key: x for x in report.targets(bench(), P, "accuracy", rec)}
    assert t["teacher_score"].measured == pytest.approx(0.85)
    assert t["student_ratio"].measured == pytest.approx(0.82 / 0.84)  # vs teacher-onnx-int8
    assert t["speedup_same_runtime"].measured == pytest.approx(2.0 / 0.25)
    assert t["speedup_vs_torch_fp32"].measured == pytest.approx(10.0 / 0.25)
    assert t["size_ratio"].measured == pytest.approx(90.0 / 4.0)
    assert t["fused_latency_ratio"].measured == pytest.approx(0.4 / 0.5)
    assert t["fused_score_drop"].measured == pytest.approx(0.001)
    assert t["pruned_speedup"].measured == pytest.approx(0.9 / 0.5)
    assert t["pruned_score_drop"].measured == pytest.approx(0.005)
    assert all(x.met for x in t.values())


@pytest.mark.parametrize(
    ("over", "failing"),
    [
        ({"teacher_torch_fp32": {"accuracy": 0.80}}, "teacher_score"),
        ({"student_pruned_vocab_onnx_int8": {"accuracy": 0.70}}, "student_ratio"),
        ({"teacher_onnx_int8": {"latency_ms_p50": 0.5}}, "speedup_same_runtime"),
        ({"teacher_torch_fp32": {"latency_ms_p50": 1.0}}, "speedup_vs_torch_fp32"),
        ({"teacher_torch_fp32": {"size_mb": 20.0}}, "size_ratio"),
        ({"student_onnx_int8": {"latency_ms_p50": 0.45}}, "fused_latency_ratio"),
        ({"student_onnx_int8": {"accuracy": 0.81}}, "fused_score_drop"),
        ({"student_pruned_onnx_fp32": {"latency_ms_p50": 0.8}}, "pruned_speedup"),
        ({"student_pruned_onnx_fp32": {"accuracy": 0.80}}, "pruned_score_drop"),
    ],
)
def test_each_target_can_fail(over, failing):
    met = {x.key: x.met for x in report.targets(bench(**over), P, "accuracy",
                                                 "student-pruned-vocab-onnx-int8")}
    assert met[failing] is False
    assert sum(met.values()) == len(met) - 1


def test_targets_follow_the_task_metric():
    t = {x.key: x for x in report.targets(bench(), P, "macro_f1", "student-onnx-int8")}
    assert t["teacher_score"].measured == pytest.approx(0.83)
    assert "macro-F1" in t["teacher_score"].name


def test_missing_variants_and_no_recommendation_fail_without_crashing():
    t = {x.key: x for x in report.targets({"teacher-torch-fp32": row(0.9, 1, 1)}, P)}
    assert t["teacher_score"].met and t["student_ratio"].measured is None
    assert not t["pruned_speedup"].met


def test_markdown_puts_the_recommended_variant_first():
    classes = {w: {"neg": {"precision": 0.5, "recall": 0.25, "f1": 0.333, "support": 4},
                   "pos": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 6}}
               for w in ("teacher", "student")}
    prep = {"n_classes": 2, "label_names": ["neg", "pos"], "pair": True}
    rec = "student-pruned-vocab-onnx-int8"
    text = report.markdown(bench(), {"nas": {"duration_s": 12.0}, "hpo": {"duration_s": 30.0},
                                     "prepare": prep}, P, classes=classes, recommended=rec)
    assert text.index(f"**Recommended: `{rec}`**") < text.index("## Variants")
    # vs teacher-onnx-int8 (no end-to-end figure measured: the model-only one stands in)
    assert "8.0x faster end to end (8.0x model only), 5.8x smaller, 0.976 of its accuracy" \
        in text
    assert "40.0x faster" in text  # vs teacher-torch-fp32, the secondary line
    table = text.split("## Variants")[1]
    first_row = [ln for ln in table.splitlines() if ln.startswith("| ")][1]
    assert first_row.startswith(f"| **{rec}** (recommended) | cpu | 0.8200 |")
    assert "Threads: torch 2, onnxruntime 2; 5 interleaved rounds" in text
    assert "`cuda`: no GPU" in text
    assert "| nas | 12 |" in text and "| **total** | **42** |" in text
    assert "skipped_providers |" not in text and "duration_s |" not in text
    assert "| neg | 4 | 0.500 / 0.250 / 0.333 | 0.500 / 0.250 / 0.333 |" in text
    assert "2 classes (neg, pos)" in text and "sentence pairs" in text
    none = report.markdown(bench(), {}, P, recommended=None)
    assert "No student variant fits the limits" in none
    # A target whose variants were not measured says so, rather than NO.
    no_int8 = {k: v for k, v in bench().items() if k != "teacher-onnx-int8"}
    text = report.markdown(no_int8, {}, P, recommended=rec)
    assert "| n/a | >= 0.95 | n/a (not measured) |" in text


def test_markdown_shows_a_causal_teachers_generic_vs_specialised_table():
    hpo = {"base_zero_shot_acc": 0.79, "base_few_shot_acc": 0.72, "few_shot_k": 2,
           "specialised_acc": 0.89, "base_word_perplexity": 431.5,
           "specialised_word_perplexity": 455.0, "base_bits_per_byte": 1.12,
           "specialised_bits_per_byte": 1.13, "teacher_eval_accuracy": 0.89,
           "form_token_match": 1.0, "teacher_prompt": "Review: {text}\nSentiment:",
           "teacher_verbalizers": " negative, positive", "duration_s": 10.0}
    text = report.markdown(bench(), {"hpo": hpo}, P, recommended=None)
    assert "## Teacher: generic vs specialised" in text
    assert "| base, 2-shot | 0.7200 |  |  |" in text
    assert "| LoRA-specialised, zero-shot | 0.8900 | 455.0 | 1.1300 |" in text
    assert "generic vs specialised" not in report.markdown(bench(), {"hpo": {"duration_s": 1}},
                                                           P, recommended=None)


HPO_UNDERTRAINED = {"final_steps": 250, "final_steps_run": 250, "final_best_step": 250,
                    "teacher_val_score": 0.83, "best_trial_score": 0.48, "trial_examples": 2000,
                    "trial_steps": 94, "n_trials": 6, "n_pruned": 0, "on_bounds_lr": 0.67,
                    "on_bounds_rank": 0.0}
PREP_MANY_CLASSES = {"train_count": 4000, "n_classes": 150}


def test_no_bottleneck_when_the_teacher_is_good_and_ahead():
    assert report.bottleneck(bench(), {}, P) == []


@pytest.mark.parametrize("over", [
    {"teacher_torch_fp32": {"accuracy": 0.80}},  # below min_teacher_score (0.83)
    {"student_onnx_fp32": {"accuracy": 0.86}},  # a student above its teacher (0.85)
])
def test_the_report_says_first_when_the_teacher_is_the_bottleneck(over):
    metrics = {"prepare": PREP_MANY_CLASSES, "hpo": HPO_UNDERTRAINED}
    lines = report.bottleneck(bench(**over), metrics, P)
    text = "\n".join(lines)
    assert lines[0].startswith("**The teacher is the bottleneck**")
    for knob in ("hpo.steps_per_class", "hpo.trial_examples", "prepare.n_train: all",
                 "hpo.method: [full, lora]", "hpo.lr", "hpo.n_trials"):
        assert knob in text, knob
    assert "hpo.rank" not in text  # no trial at its bounds
    md = report.markdown(bench(**over), metrics, P)
    assert md.startswith("**The teacher is the bottleneck**")


def test_a_well_trained_teacher_gets_only_the_generic_advice():
    hpo = {"final_steps": 250, "final_steps_run": 180, "final_best_step": 120,
           "teacher_val_score": 0.80, "best_trial_score": 0.79, "best_score_full": 0.79,
           "n_trials": 6, "n_pruned": 3}
    lines = report.bottleneck(bench(teacher_torch_fp32={"accuracy": 0.80}),
                              {"prepare": {"train_count": 4000, "n_classes": 2}, "hpo": hpo}, P)
    causes = [line for line in lines if line.startswith("- ")]
    assert causes == ["- 6 HPO trials (3 pruned): more trials with `hpo.n_trials` search the "
                      "recipe further"]


def test_many_class_names_are_cut_short():
    prep = {"n_classes": 64, "label_names": [f"intent_{i}" for i in range(64)],
            "train_count": 8000, "val_count": 500, "transfer_count": 0, "eval_count": 1076}
    md = report.markdown(bench(), {"prepare": prep}, P)
    assert "intent_7, ... (56 more)" in md and "intent_8" not in md


def test_speed_is_end_to_end_where_measured():
    """Tokenisation costs every variant about the same, so end to end the ratios shrink; the
    graph-level targets (fused int8, pruning) stay on the model-only figure."""
    b = bench()
    for r in report.variants(b).values():
        r["e2e_latency_ms_p50"] = r["latency_ms_p50"] + 0.25
    rec = "student-pruned-vocab-onnx-int8"
    t = {x.key: x for x in report.targets(b, P, "accuracy", rec)}
    assert t["speedup_same_runtime"].measured == pytest.approx(2.25 / 0.5)
    assert t["speedup_vs_torch_fp32"].measured == pytest.approx(10.25 / 0.5)
    assert t["fused_latency_ratio"].measured == pytest.approx(0.4 / 0.5)
    assert t["pruned_speedup"].measured == pytest.approx(0.9 / 0.5)
    fast = dataclasses.replace(P, max_size_mb=None, max_latency_ms=0.6)  # end to end
    assert report.recommend(b, fast, "accuracy") == "student-pruned-vocab-onnx-int8"
    text = report.markdown(b, {}, P, recommended=rec)
    assert "0.50 ms end to end (0.25 ms model only)" in text
    assert "4.5x faster end to end (8.0x model only)" in text


def test_markdown_shows_intervals_and_paired_differences():
    rec = "student-pruned-vocab-onnx-int8"
    ints = {"scores": {rec: {"accuracy": [0.79, 0.85], "macro_f1": [0.78, 0.84]}},
            "paired": {f"{rec} vs teacher-onnx-int8": {"diff": -0.02, "ci95": [-0.035, -0.006],
                                                      "distinguishable": True},
                       "student-onnx-int8-dynamic vs student-onnx-int8": {
                           "diff": 0.001, "ci95": [-0.004, 0.006], "distinguishable": False}}}
    text = report.markdown(bench(), {}, P, recommended=rec, ints=ints)
    assert f"| **{rec}** (recommended) | cpu | 0.8200 [0.790, 0.850] | 0.8000 [0.780, 0.840] |" \
        in text
    lines = {ln.split(" | ")[0][2:]: ln for ln in text.splitlines() if ln.startswith("| ")}
    ratio = next(v for k, v in lines.items() if k.startswith(f"{rec} accuracy /"))
    assert ratio.endswith("| -0.0200 [-0.0350, -0.0060] |")
    fused = next(v for k, v in lines.items() if k.startswith("fused int8 accuracy loss"))
    assert fused.endswith("| +0.0010 [-0.0040, +0.0060]; not distinguishable |")
    pruned = next(v for k, v in lines.items() if k.startswith("structured pruning accuracy"))
    assert pruned.endswith("|  |")  # no interval measured for it


def test_baselines_are_compared_never_recommended():
    b = bench()
    b["baseline-tfidf"] = row(0.90, 1.5, 2.0, "sklearn")  # best score, smallest: still a baseline
    assert report.recommend(b, P, "accuracy") == "student-onnx-int8-dynamic"
    rec = "student-pruned-vocab-onnx-int8"
    ints = {"paired": {f"{rec} vs baseline-tfidf": {"diff": -0.08, "ci95": [-0.11, -0.05],
                                                   "distinguishable": True}}}
    text = report.markdown(b, {}, P, recommended=rec, ints=ints)
    assert ("Against the best baseline `baseline-tfidf` (accuracy 0.9000, 1.50 ms end to end): "
            "-0.0800 accuracy (paired 95% interval [-0.1100, -0.0500]), 6.0x faster.") in text
    assert report.bottleneck(b, {}, P) == []  # a baseline above the teacher is not a student
    b["baseline-tfidf"]["latency_ms_p50"] = 0.05
    assert "-0.0800 accuracy (paired 95% interval [-0.1100, -0.0500]), 5.0x slower." in \
        report.markdown(b, {}, P, recommended=rec, ints=ints)


def test_speed_ups_show_their_spread_over_rounds():
    rec = "student-pruned-vocab-onnx-int8"
    rounds = {"teacher-onnx-int8": [2.0, 2.0, 2.4, 1.6], rec: [0.25, 0.25, 0.2, 0.4],
              "teacher-torch-fp32": [10.0] * 4}
    assert report.round_ratios(rounds, "teacher-onnx-int8", rec) == pytest.approx(
        [8.0, 8.0, 12.0, 4.0])
    assert report.round_ratios(rounds, "teacher-onnx-int8", "missing") == []
    text = report.markdown(bench(), {}, P, recommended=rec, ints={"rounds_ms": rounds})
    same = next(ln for ln in text.splitlines() if "same runtime and precision" in ln
                and ln.startswith("| "))
    assert same.endswith("| per round: 7.00 to 9.00 (middle half of 4 rounds), 4.00 to 12.00 "
                         "in all |")
    fused = next(ln for ln in text.splitlines() if ln.startswith("| fused int8 model-only"))
    assert fused.endswith("|  |")  # a graph target has no round spread shown
