"""The ``compress:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import in_range, positive


@dataclass
class CompressParams:
    """Pruning of the student (``method``), then a recovery fine-tune that distils from the
    teacher."""

    method: Literal["structured", "unstructured"] = "structured"
    """``structured``: remove whole attention heads and FFN neurons (a smaller, faster dense
    model); ``unstructured``: zero the globally smallest weights (no speed-up)."""
    keep_heads: float = 0.25
    """structured: fraction of attention heads each layer keeps (at least one)."""
    keep_neurons: float = 0.25
    """structured: fraction of FFN neurons each layer keeps (at least one)."""
    importance_batches: int = 8
    """structured: labelled train batches (``batch_size`` each) that score heads / neurons."""
    sparsity: float = 0.3
    """unstructured: fraction of encoder linear weights set to zero (embeddings are not
    pruned)."""
    recovery_steps: int = 2500
    """Fine-tuning steps after pruning on distill's corpus, train + transfer (0 = none);
    unstructured keeps its mask fixed."""
    kd_alpha: float = 0.1
    """Recovery loss: kd_alpha * CE + (1 - kd_alpha) * T^2 * KL to the teacher (1 = CE only)."""
    kd_temperature: float = 2.0
    """Temperature of the recovery KD term."""
    hidden_weight: float = 0.0
    """Recovery: weight of the hidden-state MSE to the unpruned student (same widths, layer by
    layer, embedding output included) on top of the logit loss; 0 = logits only."""
    lr: float = 1e-4
    """AdamW learning rate of the recovery."""
    batch_size: int = 32
    """Examples per recovery step."""
    seed: int = 0
    """Seed of the importance batches and the recovery."""

    def check(self) -> list[str]:
        out = in_range("sparsity", self.sparsity, 0.0, 0.99)
        for name in ("keep_heads", "keep_neurons"):
            if not 0 < getattr(self, name) <= 1:
                out.append(f"{name}: got {getattr(self, name)!r}, expected a fraction in (0, 1]")
        out += in_range("kd_alpha", self.kd_alpha, 0.0, 1.0) + positive(self, "kd_temperature")
        if self.recovery_steps < 0:
            out.append(f"recovery_steps: got {self.recovery_steps}, expected >= 0")
        if self.hidden_weight < 0:
            out.append(f"hidden_weight: got {self.hidden_weight}, expected >= 0")
        return out + positive(self, "lr", "batch_size", "importance_batches")
