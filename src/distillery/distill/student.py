"""Training the student: built from the NAS genome in the family of its base model,
initialised from it where shapes allow, then distilled from the teacher's logits (and, when
their weights are > 0, its hidden states and attentions) on train + transfer. Used by stage
``distill`` and by the KD ablation study, so both train the same way."""

from __future__ import annotations

import numpy as np
import torch

from distillery.config.distill import DistillParams
from distillery.data.prepared import Split
from distillery.distill import losses
from distillery.modeling import families, loading, training


def train_config(p: DistillParams, max_length: int) -> training.TrainConfig:
    """The optimisation settings of ``distill.*``."""
    return training.TrainConfig(lr=p.lr, batch_size=p.batch_size, max_length=max_length,
                                epochs=p.epochs, seed=p.seed)


def build(genome: dict[str, int], base: torch.nn.Module, init: bool) -> torch.nn.Module:
    """The student of ``genome`` as every training of it starts (stage ``distill``, the NAS
    proxy): built from ``base``, initialised from it when ``init``, and with the word
    embeddings frozen when they are the base's own (same width): a sliced or random table
    trains."""
    student = families.build_student(genome, base, init=init)
    if init and genome["hidden_size"] == base.config.hidden_size:
        loading.freeze_word_embeddings(student)
    return student


def distil(genome: dict, teacher: torch.nn.Module, base: torch.nn.Module, tok,
           corpus: Split, t_logits: np.ndarray, p: DistillParams, max_length: int,
           device: torch.device, on_step: training.StepHook | None = None,
           desc: str | None = "distill") -> tuple[torch.nn.Module, list[float], bool]:
    """Build and train the student of ``genome``.

    Args:
        teacher: the fine-tuned teacher (run on each batch for layer-wise KD only).
        base: the model the student is built from and initialised with (the teacher, or
            ``distill.student_model``).
        corpus: train + transfer; ``t_logits`` its teacher logits, row for row.

    Returns:
        The trained student (eval mode), the loss of every step, and whether layer-wise KD ran.
    """
    student = build(genome, base, init=p.student_init != "random").to(device)
    impl = student.config._attn_implementation
    hidden_w, attention_w = losses.layer_wise_weights(p.hidden_weight, p.attention_weight,
                                                      p.student_init)
    layer_wise = hidden_w > 0 or attention_w > 0
    loss = losses.DistillLoss(t_logits, p.alpha, p.temperature,
                              teacher.to(device) if layer_wise else None, student,
                              hidden_w, attention_w)
    step_losses = training.train(student, corpus, tok, train_config(p, max_length), loss,
                                 desc=desc, on_step=on_step)
    student.set_attn_implementation(impl)  # attention KD switched it to eager
    return student, step_losses, layer_wise
