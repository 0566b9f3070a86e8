"""The ``benchmark:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from distillery.config.base import positive


@dataclass
class BenchmarkParams:
    """Latency, throughput, accuracy and size of every variant on every execution provider."""

    warmup: int = 10
    """Untimed calls per variant before timing."""
    repeats: int = 800
    """Timed batch-1 calls for the latency percentiles."""
    batch_size: int = 32
    """Batch size of the throughput measurement."""
    throughput_batches: int = 40
    """Batches timed per variant for throughput (one per round)."""
    rounds: int = 40
    """Interleaved rounds: each times every variant for repeats / rounds calls in turn. More
    rounds steady the ratios: over 6-8 repetitions on this VM, fused/plain int8 spread 0.69-1.16
    with 10 rounds of 20 calls and 0.81-0.98 with 40 (int8 teacher / recommended: 4.1-6.6x and
    4.4-5.7x)."""
    threads: int = 0
    """Intra-op threads for torch and ONNX Runtime alike (0 = all cores); the counts actually
    used are recorded in the metrics."""
    providers: list[Literal["cpu", "cuda", "tensorrt"]] = field(
        default_factory=lambda: ["cpu", "cuda", "tensorrt"]
    )
    """Execution providers to try; unavailable ones are skipped with a logged reason."""

    def check(self) -> list[str]:
        out = positive(self, "repeats", "batch_size", "throughput_batches", "rounds")
        for name in ("warmup", "threads"):
            if getattr(self, name) < 0:
                out.append(f"{name}: got {getattr(self, name)}, expected >= 0")
        if "cpu" not in self.providers:
            out.append(f"providers: got {self.providers!r}, 'cpu' is always required")
        return out
