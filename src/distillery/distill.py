"""Response-based knowledge distillation (Hinton et al. 2015).

``loss = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))``.
Unlabelled examples (label ``-1``, the transfer set the teacher labels for free) get only
the KL term.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from distillery.training import LossFn

logger = logging.getLogger(__name__)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Distillation loss on a batch.

    Args:
        student_logits: ``(B, C)``.
        teacher_logits: ``(B, C)``.
        labels: ``(B,)``; ``-1`` marks an unlabelled example (no CE term).
        alpha: weight of the hard-label cross-entropy.
        temperature: softmax temperature ``T`` of both distributions.
    """
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=-1)  # (B, C)
    p_t = F.softmax(teacher_logits / t, dim=-1)  # (B, C)
    kl = F.kl_div(log_p_s, p_t, reduction="none").sum(-1)  # (B,)
    labelled = labels >= 0
    ce = torch.zeros_like(kl)
    if labelled.any():
        ce[labelled] = F.cross_entropy(student_logits[labelled], labels[labelled], reduction="none")
    # Unlabelled rows have no hard target: their whole weight goes to the KL term.
    w_ce = torch.where(labelled, torch.full_like(kl, alpha), torch.zeros_like(kl))
    return (w_ce * ce + (1 - w_ce) * t * t * kl).mean()


def kd_loss_fn(teacher_logits: np.ndarray, alpha: float, temperature: float) -> LossFn:
    """A training-loop loss that looks up precomputed teacher logits by example index."""
    table = torch.from_numpy(teacher_logits)

    def fn(logits: torch.Tensor, labels: torch.Tensor, idx: list[int]) -> torch.Tensor:
        return kd_loss(logits, table[idx], labels, alpha, temperature)

    return fn
