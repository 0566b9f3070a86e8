"""Targets and the Markdown results table built from benchmark metrics."""

from __future__ import annotations

import pytest

from distillery import report
from distillery.params import ReportParams

P = ReportParams(min_teacher_score=0.83, min_student_ratio=0.95, min_speedup=8.0,
                 min_size_ratio=4.0)


def bench(teacher_acc=0.85, student_acc=0.82, t_lat=10.0, s_lat=1.0, t_mb=90.0, s_mb=15.0,
          t_f1=0.80, s_f1=0.70):
    row = {"latency_ms_p95": 1.0, "throughput_per_s": 100.0, "n_params": 1_000_000}
    return {
        "teacher-torch-fp32": {**row, "accuracy": teacher_acc, "macro_f1": t_f1,
                               "latency_ms_p50": t_lat, "size_mb": t_mb, "provider": "torch-cpu"},
        "student-onnx-int8": {**row, "accuracy": student_acc, "macro_f1": s_f1,
                              "latency_ms_p50": s_lat, "size_mb": s_mb, "provider": "cpu"},
        "skipped_providers": {"cuda": "no GPU"},
        "duration_s": 3.0,
    }


def test_targets_measured_values():
    t = report.targets(bench(), P)
    assert [x.measured for x in t] == pytest.approx([0.85, 0.82 / 0.85, 10.0, 6.0])
    assert all(x.met for x in t)


def test_targets_follow_the_task_metric_and_the_params():
    t = report.targets(bench(), P, metric="macro_f1")
    assert [x.measured for x in t][:2] == pytest.approx([0.80, 0.70 / 0.80])
    assert [x.met for x in t] == [False, False, True, True]
    assert "macro-F1" in t[0].name
    strict = ReportParams(min_teacher_score=0.9, min_student_ratio=0.5, min_speedup=20.0,
                          min_size_ratio=1.0)
    assert [x.met for x in report.targets(bench(), strict)] == [False, True, False, True]


@pytest.mark.parametrize(
    ("kwargs", "failing"),
    [
        ({"teacher_acc": 0.80, "student_acc": 0.79}, 0),
        ({"student_acc": 0.70}, 1),
        ({"s_lat": 2.0}, 2),
        ({"s_mb": 30.0}, 3),
    ],
)
def test_each_target_can_fail(kwargs, failing):
    met = [x.met for x in report.targets(bench(**kwargs), P)]
    assert met[failing] is False
    assert sum(met) == 3


def test_markdown_lists_variants_targets_classes_and_durations():
    classes = {w: {"neg": {"precision": 0.5, "recall": 0.25, "f1": 0.333, "support": 4},
                   "pos": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 6}}
               for w in ("teacher", "student")}
    prep = {"n_classes": 2, "label_names": ["neg", "pos"], "pair": True}
    text = report.markdown(bench(), {"nas": {"duration_s": 12.0}, "hpo": {"duration_s": 30.0},
                                     "prepare": prep}, P, classes=classes)
    assert "| student-onnx-int8 | cpu | 0.8200 | 0.7000 | 1.00 |" in text
    assert "`cuda`: no GPU" in text
    assert "| nas | 12 |" in text and "| **total** | **42** |" in text
    assert "skipped_providers |" not in text and "duration_s |" not in text
    assert "| neg | 4 | 0.500 / 0.250 / 0.333 | 0.500 / 0.250 / 0.333 |" in text
    assert "2 classes (neg, pos)" in text and "sentence pairs" in text
