"""The study's headline numbers: targets checked against measured metrics, as Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distillery.params import ReportParams

STAGES = ("data", "prepare", "nas", "hpo", "distill", "compress", "export", "benchmark")
TEACHER, STUDENT = "teacher-torch-fp32", "student-onnx-int8"
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


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


def targets(bench: dict[str, Any], p: ReportParams, metric: str = "accuracy") -> list[Target]:
    """The targets of ``report.*`` params, computed from ``metrics/benchmark.json``."""
    teacher, student = bench[TEACHER], bench[STUDENT]
    m = METRIC_NAMES[metric]
    return [
        Target(f"{TEACHER} eval {m}", teacher[metric], p.min_teacher_score),
        Target(f"{STUDENT} {m} / teacher {m}", student[metric] / teacher[metric],
               p.min_student_ratio),
        Target(f"batch-1 latency speed-up ({TEACHER} p50 / {STUDENT} p50)",
               teacher["latency_ms_p50"] / student["latency_ms_p50"], p.min_speedup),
        Target(f"size reduction ({TEACHER} MB / {STUDENT} MB)",
               teacher["size_mb"] / student["size_mb"], p.min_size_ratio),
    ]


def _variants(bench: dict[str, Any]) -> list[str]:
    lines = ["| variant | provider | accuracy | macro-F1 | latency p50 (ms) | latency p95 (ms) "
             "| throughput (ex/s) | size (MB) | params (M) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in bench.items():
        if not isinstance(r, dict) or "accuracy" not in r:
            continue
        lines.append(
            f"| {name} | {r['provider']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} "
            f"| {r['latency_ms_p50']:.2f} | {r['latency_ms_p95']:.2f} "
            f"| {r['throughput_per_s']:.0f} | {r['size_mb']:.1f} | {r['n_params'] / 1e6:.2f} |"
        )
    return lines


def _classes(classes: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Per-class F1 of the teacher and the shipped student, side by side."""
    who = list(classes)
    lines = ["| class | support | " + " | ".join(f"{w} P / R / F1" for w in who) + " |",
             "|---|---:|" + "---:|" * len(who)]
    first = classes[who[0]]
    for name in first:
        cells = [f"{classes[w][name]['precision']:.3f} / {classes[w][name]['recall']:.3f} / "
                 f"{classes[w][name]['f1']:.3f}" for w in who]
        lines.append(f"| {name} | {first[name]['support']} | " + " | ".join(cells) + " |")
    return lines


def markdown(bench: dict[str, Any], stage_metrics: dict[str, dict[str, Any]],
             p: ReportParams, metric: str = "accuracy",
             classes: dict[str, Any] | None = None) -> str:
    """Results table, targets, per-class scores and stage durations as one Markdown document."""
    prep = stage_metrics.get("prepare", {})
    lines = []
    if prep:
        lines += [f"Data: {prep.get('n_classes', '?')} classes "
                  f"({', '.join(str(x) for x in prep.get('label_names', []))}); "
                  f"{prep.get('train_count', '?')} train / {prep.get('val_count', '?')} val / "
                  f"{prep.get('transfer_count', '?')} transfer / {prep.get('eval_count', '?')} "
                  f"eval examples{'; sentence pairs' if prep.get('pair') else ''}. "
                  f"Selection metric (`task.metric`): {METRIC_NAMES[metric]}.", ""]
    lines += ["## Variants", "", *_variants(bench)]
    skipped = bench.get("skipped_providers") or {}
    if skipped:
        lines += ["", "Skipped execution providers: "
                  + "; ".join(f"`{k}`: {v}" for k, v in skipped.items())]
    lines += ["", "## Targets", "", "| target | measured | required | met |",
              "|---|---:|---:|---|"]
    for t in targets(bench, p, metric):
        op = ">=" if t.higher_is_better else "<="
        lines.append(f"| {t.name} | {t.measured:.3f} | {op} {t.required} "
                     f"| {'yes' if t.met else 'NO'} |")
    if classes:
        lines += ["", "## Per class (eval split)", "", *_classes(classes)]
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
