"""Targets and the Markdown results table built from benchmark metrics."""

from __future__ import annotations

import pytest

from distillery import report


def bench(teacher_acc=0.85, student_acc=0.82, t_lat=10.0, s_lat=1.0, t_mb=90.0, s_mb=15.0):
    row = {"latency_ms_p95": 1.0, "throughput_per_s": 100.0, "n_params": 1_000_000}
    return {
        "teacher-torch-fp32": {**row, "accuracy": teacher_acc, "latency_ms_p50": t_lat,
                               "size_mb": t_mb, "provider": "torch-cpu"},
        "student-onnx-int8": {**row, "accuracy": student_acc, "latency_ms_p50": s_lat,
                              "size_mb": s_mb, "provider": "cpu"},
        "skipped_providers": {"cuda": "no GPU"},
        "duration_s": 3.0,
    }


def test_targets_measured_values():
    t = report.targets(bench())
    assert [x.measured for x in t] == pytest.approx([0.85, 0.82 / 0.85, 10.0, 6.0])
    assert all(x.met for x in t)


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
    met = [x.met for x in report.targets(bench(**kwargs))]
    assert met[failing] is False
    assert sum(met) == 3


def test_markdown_lists_variants_targets_and_durations():
    text = report.markdown(bench(), {"nas": {"duration_s": 12.0}, "hpo": {"duration_s": 30.0}})
    assert "| student-onnx-int8 | cpu | 0.8200 | 1.00 |" in text
    assert "`cuda`: no GPU" in text
    assert "| nas | 12 |" in text and "| **total** | **42** |" in text
    assert "skipped_providers |" not in text and "duration_s |" not in text
