"""The ``report:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.config.base import in_range, positive


@dataclass
class ReportParams:
    """The recommended variant's limits and the targets the report checks (on
    ``task.metric``)."""

    max_latency_ms: float | None = None
    """The recommended student's batch-1 p50 latency must be at most this; null = no limit."""
    max_size_mb: float | None = 9.0
    """The recommended student's size on disk must be at most this; null = no limit."""
    min_teacher_score: float = 0.83
    """The fine-tuned teacher's eval score (torch fp32) must reach this."""
    min_student_ratio: float = 0.97
    """Recommended student score / the teacher's in the same runtime and precision."""
    min_speedup_same_runtime: float = 6.0
    """Batch-1 p50 latency, teacher in the recommended's runtime and precision / recommended."""
    min_speedup: float = 20.0
    """Batch-1 p50 latency, teacher-torch-fp32 / recommended (includes the runtime switch)."""
    min_size_ratio: float = 10.0
    """Size on disk, teacher-torch-fp32 / recommended."""
    max_fused_latency_ratio: float = 0.85
    """Latency of the student in the export's int8 recipe / in plain quantize_dynamic."""
    max_fused_score_drop: float = 0.005
    """Score of plain dynamic int8 minus the int8 recipe's (0.005 = half a point)."""
    min_pruned_speedup: float = 1.5
    """Latency of the unpruned / the structured-pruned student (ONNX fp32)."""
    max_pruned_score_drop: float = 0.01
    """Score of the unpruned minus the pruned student after recovery (ONNX fp32)."""

    def check(self) -> list[str]:
        out = in_range("min_teacher_score", self.min_teacher_score, 0.0, 1.0)
        out += in_range("min_student_ratio", self.min_student_ratio, 0.0, 2.0)
        out += positive(self, "min_speedup", "min_speedup_same_runtime", "min_size_ratio",
                         "max_fused_latency_ratio", "min_pruned_speedup")
        for name in ("max_fused_score_drop", "max_pruned_score_drop"):  # a fraction, not points
            out += in_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("max_latency_ms", "max_size_mb"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                out.append(f"{name}: got {getattr(self, name)!r}, expected > 0 or null")
        return out
