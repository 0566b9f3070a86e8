"""Knowledge distillation: response-based (Hinton et al. 2015) and layer-wise (TinyBERT,
Jiao et al. 2020).

The objective over a batch with labelled rows ``L`` (label >= 0) and all rows ``B``::

    loss = alpha * mean_L CE(s, y) + (1 - alpha) * mean_B T^2 KL(softmax(t/T) || softmax(s/T))
           + hidden_weight * hidden-state MSE + attention_weight * attention KL

``alpha`` is the weight of the hard labels over the whole objective: ``alpha = 1`` is plain
fine-tuning on the labelled rows (transfer rows, label ``-1``, then teach nothing) and
``alpha = 0`` is pure distillation. The layer-wise terms match student layer ``i`` to teacher
layer ``layer_map[i]`` (the layers the student was initialised from) plus the embedding output:
hidden states through a learned linear projection when the widths differ, and the attention
distributions (KL, per head, over non-padding queries) of layers whose head counts are equal.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distillery.modeling import families

logger = logging.getLogger(__name__)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Response-based distillation loss on a batch.

    Args:
        student_logits: ``(B, C)``.
        teacher_logits: ``(B, C)``.
        labels: ``(B,)``; ``-1`` marks an unlabelled example (no CE term).
        alpha: weight of the hard-label CE (mean over labelled rows) in the whole objective;
            ``1 - alpha`` weighs the ``T^2``-scaled KL (mean over all rows).
        temperature: softmax temperature ``T`` of both distributions.
    """
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=-1)  # (B, C)
    p_t = F.softmax(teacher_logits / t, dim=-1)  # (B, C)
    kl = F.kl_div(log_p_s, p_t, reduction="none").sum(-1).mean()
    labelled = labels >= 0
    if labelled.any():
        ce = F.cross_entropy(student_logits[labelled], labels[labelled])
    else:  # no hard target in this batch: the CE term is zero (and keeps the graph)
        ce = student_logits.sum() * 0.0
    return alpha * ce + (1 - alpha) * t * t * kl


def hidden_mse(
    student_hidden: tuple[torch.Tensor, ...],
    teacher_hidden: tuple[torch.Tensor, ...],
    pairs: list[tuple[int, int]],
    project: torch.nn.Module,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Mean over ``pairs`` of the MSE between projected student and teacher hidden states.

    Args:
        student_hidden / teacher_hidden: ``hidden_states`` of the two models (index 0 is the
            embedding output), each ``(B, T, d)``.
        pairs: ``(student index, teacher index)`` into those tuples.
        project: maps the student width to the teacher's (``nn.Identity`` when equal).
        mask: ``(B, T)`` attention mask; padding positions are left out.
    """
    m = mask.unsqueeze(-1).to(student_hidden[0].dtype)  # (B, T, 1)
    total = 0.0
    for i, j in pairs:
        diff = (project(student_hidden[i]) - teacher_hidden[j]) ** 2 * m  # (B, T, d_t)
        total = total + diff.sum() / (m.sum() * diff.shape[-1])
    return total / len(pairs)


def attention_kl(
    student_attn: tuple[torch.Tensor, ...],
    teacher_attn: tuple[torch.Tensor, ...],
    pairs: list[tuple[int, int]],
    mask: torch.Tensor,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Mean over ``pairs`` of ``KL(teacher || student)`` of the attention distributions.

    Args:
        student_attn / teacher_attn: post-softmax attentions, each ``(B, H, T, T)`` (same H).
        pairs: ``(student layer, teacher layer)``.
        mask: ``(B, T)``; the KL is averaged over heads and non-padding query positions.
    """
    q = mask.to(student_attn[0].dtype)[:, None, :]  # (B, 1, T) queries
    total = 0.0
    for i, j in pairs:
        p_t, p_s = teacher_attn[j], student_attn[i]
        kl = (torch.xlogy(p_t, p_t) - p_t * torch.log(p_s.clamp_min(eps))).sum(-1)  # (B, H, T)
        total = total + (kl * q).sum() / (q.sum() * kl.shape[1])
    return total / len(pairs)


class DistillLoss(torch.nn.Module):
    """The training-loop loss of distillation (see the module docstring).

    Logits of the teacher come from a precomputed table, looked up by example index. The
    layer-wise terms (weights > 0) run the teacher on each batch; the hidden-state projection
    is learned with the student (it is a parameter of this module, dropped after training).
    Attention KD needs attention probabilities: both models switch to eager attention, and
    the student's attention-probability dropout is turned off (the teacher's distributions
    are the signal).
    """

    def __init__(
        self,
        teacher_logits: np.ndarray,
        alpha: float,
        temperature: float,
        teacher: Any = None,
        student: Any = None,
        hidden_weight: float = 0.0,
        attention_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.table = torch.from_numpy(np.asarray(teacher_logits, dtype=np.float32))
        self.alpha, self.temperature = alpha, temperature
        self.hidden_weight, self.attention_weight = hidden_weight, attention_weight
        self.model_kwargs: dict[str, bool] = {}
        self.project: torch.nn.Module = torch.nn.Identity()
        self._teacher = None
        if not (hidden_weight > 0 or attention_weight > 0):
            return
        if teacher is None or student is None:
            raise ValueError("layer-wise distillation needs the teacher and the student")
        self._teacher = [teacher.eval()]  # a list: the teacher's weights are not trained
        s_layers, t_layers = len(families.layers(student)), len(families.layers(teacher))
        mapping = families.layer_map(s_layers, t_layers)
        self.hidden_pairs = [(0, 0)] + [(i + 1, j + 1) for i, j in enumerate(mapping)]
        s_cfg, t_cfg = families.genome_of(student.config), families.genome_of(teacher.config)
        if hidden_weight > 0:
            self.model_kwargs["output_hidden_states"] = True
            if s_cfg["hidden_size"] != t_cfg["hidden_size"]:
                self.project = torch.nn.Linear(s_cfg["hidden_size"], t_cfg["hidden_size"])
        self.attention_pairs: list[tuple[int, int]] = []
        if attention_weight > 0:
            if s_cfg["num_attention_heads"] == t_cfg["num_attention_heads"]:
                self.attention_pairs = list(enumerate(mapping))
                self.model_kwargs["output_attentions"] = True
                for model in (teacher, student):
                    model.set_attn_implementation("eager")
                for name, module in student.named_modules():
                    if isinstance(module, torch.nn.Dropout) and _is_attention_dropout(name):
                        module.p = 0.0
            else:
                logger.warning("attention KD skipped: the student has %d heads, the teacher %d",
                               s_cfg["num_attention_heads"], t_cfg["num_attention_heads"])
        logger.info("layer-wise KD: hidden pairs %s (projection %s), attention pairs %s",
                    self.hidden_pairs if hidden_weight > 0 else [],
                    type(self.project).__name__, self.attention_pairs)

    def forward(self, outputs: Any, labels: torch.Tensor, idx: list[int],
                enc: dict[str, torch.Tensor]) -> torch.Tensor:
        targets = self.table[idx].to(outputs.logits.device)
        loss = kd_loss(outputs.logits.float(), targets, labels, self.alpha, self.temperature)
        if not self.model_kwargs:
            return loss
        with torch.no_grad():
            t_out = self._teacher[0](**enc, **self.model_kwargs)
        mask = enc["attention_mask"]
        if self.hidden_weight > 0:
            loss = loss + self.hidden_weight * hidden_mse(
                outputs.hidden_states, t_out.hidden_states, self.hidden_pairs, self.project, mask)
        if self.attention_pairs:
            loss = loss + self.attention_weight * attention_kl(
                outputs.attentions, t_out.attentions, self.attention_pairs, mask)
        return loss


def _is_attention_dropout(name: str) -> bool:
    """Dropout on attention probabilities (``...attention.self.dropout`` in BERT-like
    families, ``...attention.dropout`` in DistilBERT), not on the attention's output."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-1] == "dropout" and parts[-2] in ("self", "attention")


def kd_loss_fn(teacher_logits: np.ndarray, alpha: float, temperature: float) -> DistillLoss:
    """Response-based distillation as a training-loop loss (teacher logits by index)."""
    return DistillLoss(teacher_logits, alpha, temperature)


def layer_wise_weights(hidden_weight: float, attention_weight: float,
                       student_init: str) -> tuple[float, float]:
    """The hidden-state and attention KD weights to use: as given when the student starts from
    the teacher's layers (``distill.student_init: teacher``), whose layer map they rely on;
    else ``(0, 0)`` with a warning naming the params to change."""
    if (hidden_weight > 0 or attention_weight > 0) and student_init != "teacher":
        logger.warning("layer-wise KD skipped: it maps student layers to the teacher layers "
                       "they start from (distill.student_init: teacher), got %r; set "
                       "distill.hidden_weight and attention_weight to 0 to silence this",
                       student_init)
        return 0.0, 0.0
    return hidden_weight, attention_weight
