"""The study's headline numbers: targets checked against measured metrics, as Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STAGES = ("prepare", "nas", "hpo", "distill", "compress", "export", "benchmark")


@dataclass
class Target:
    """One quality or speed target: ``measured`` must reach ``required``."""

    name: str
    measured: float
    required: float
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        if self.higher_is_better:
            return self.measured >= self.required
        return self.measured <= self.required


def targets(bench: dict[str, Any]) -> list[Target]:
    """The issue's targets, computed from ``metrics/benchmark.json``."""
    teacher, student = bench["teacher-torch-fp32"], bench["student-onnx-int8"]
    return [
        Target("teacher-torch-fp32 dev accuracy", teacher["accuracy"], 0.83),
        Target("student-onnx-int8 accuracy / teacher accuracy",
               student["accuracy"] / teacher["accuracy"], 0.95),
        Target("batch-1 latency speed-up (teacher-torch-fp32 p50 / student-onnx-int8 p50)",
               teacher["latency_ms_p50"] / student["latency_ms_p50"], 8.0),
        Target("size reduction (teacher-torch-fp32 MB / student-onnx-int8 MB)",
               teacher["size_mb"] / student["size_mb"], 4.0),
    ]


def markdown(bench: dict[str, Any], stage_metrics: dict[str, dict[str, Any]]) -> str:
    """Results table, targets table and stage durations as one Markdown document."""
    lines = ["## Variants", "",
             "| variant | provider | dev accuracy | latency p50 (ms) | latency p95 (ms) "
             "| throughput (ex/s) | size (MB) | params (M) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in bench.items():
        if not isinstance(r, dict) or "accuracy" not in r:
            continue
        lines.append(
            f"| {name} | {r['provider']} | {r['accuracy']:.4f} | {r['latency_ms_p50']:.2f} "
            f"| {r['latency_ms_p95']:.2f} | {r['throughput_per_s']:.0f} | {r['size_mb']:.1f} "
            f"| {r['n_params'] / 1e6:.2f} |"
        )
    skipped = bench.get("skipped_providers") or {}
    if skipped:
        lines += ["", "Skipped execution providers: "
                  + "; ".join(f"`{k}`: {v}" for k, v in skipped.items())]
    lines += ["", "## Targets", "", "| target | measured | required | met |",
              "|---|---:|---:|---|"]
    for t in targets(bench):
        op = ">=" if t.higher_is_better else "<="
        lines.append(f"| {t.name} | {t.measured:.3f} | {op} {t.required} "
                     f"| {'yes' if t.met else 'NO'} |")
    lines += ["", "## Stage durations", "", "| stage | seconds (compute, without start-up) |",
              "|---|---:|"]
    total = 0.0
    for stage in STAGES:
        d = stage_metrics.get(stage, {}).get("duration_s")
        if d is not None:
            total += d
            lines.append(f"| {stage} | {d:.0f} |")
    lines.append(f"| **total** | **{total:.0f}** |")
    return "\n".join(lines) + "\n"
