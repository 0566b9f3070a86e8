"""A small, plain training loop shared by NAS proxies, LoRA fine-tuning, KD and recovery."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from distillery.core.device import autocast, grad_scaler, model_device
from distillery.data.prepared import Split, batches

logger = logging.getLogger(__name__)


class LossFn(Protocol):
    """``loss(outputs, labels (B,), indices into the split, encoded inputs) -> scalar``.

    ``outputs`` is the model's output object (``.logits``, and ``.hidden_states`` /
    ``.attentions`` when the loss asks for them through a ``model_kwargs`` attribute). A loss
    that is an ``nn.Module`` with parameters (e.g. a learned projection) is trained with the
    model.
    """

    def __call__(self, outputs: Any, labels: torch.Tensor, idx: list[int],
                 enc: dict[str, torch.Tensor]) -> torch.Tensor: ...


def cross_entropy(outputs: Any, labels: torch.Tensor, idx: list[int],
                  enc: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Plain hard-label cross-entropy (the default loss)."""
    return F.cross_entropy(outputs.logits, labels)


@dataclass
class TrainConfig:
    """How long and how fast to train."""

    lr: float
    batch_size: int
    max_length: int
    steps: int | None = None
    """Number of optimiser steps; if None, ``epochs`` decides."""
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0

    def total_steps(self, n_examples: int) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil(self.epochs * n_examples / self.batch_size))


StepHook = Callable[[int, float, torch.nn.Module], "bool | None"]
"""``hook(step, loss, model)``, called after every optimiser step (1-based), e.g. to log a
training curve (:class:`distillery.measure.curves.Curve`) or to validate and stop early
(:class:`distillery.teachers.hpo.Validator`): a truthy return value ends the training."""

ParamGroups = list[torch.nn.Parameter] | list[dict[str, Any]]
"""Parameters, or AdamW parameter groups (``{"params": [...], "lr": ...}``) when some train at
their own learning rate (e.g. a fresh classification head)."""


def fit(
    model: torch.nn.Module,
    params: ParamGroups,
    cfg: TrainConfig,
    n_examples: int,
    epoch_batches: Callable[[int], Iterable[Any]],
    step_loss: Callable[[Any], torch.Tensor],
    desc: str | None = "train",
    on_step: StepHook | None = None,
) -> list[float]:
    """The optimisation loop every training in the project runs: AdamW on ``params`` (or
    parameter groups with their own ``lr``), linear warm-up and decay over
    ``cfg.total_steps(n_examples)`` steps, gradient clipping at 1, a tqdm bar, ``on_step`` after
    each step (training stops early when it returns a truthy value); on a GPU the forward
    runs under autocast (bf16, else fp16 with a gradient scaler; :mod:`distillery.core.device`), on
    the CPU nothing changes.

    Args:
        epoch_batches: ``epoch -> batches`` of that epoch (seeded shuffle); cycled until the
            steps are done.
        step_loss: ``batch -> scalar loss`` (moves the batch to the model's device and runs the
            forward; called under autocast).

    Returns:
        The loss of every step.
    """
    device = model_device(model)
    scaler = grad_scaler(device)
    total = cfg.total_steps(n_examples)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    flat = [q for g in opt.param_groups for q in g["params"]]
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    model.train()
    losses: list[float] = []
    epoch, stop = 0, False
    bar = tqdm(total=total, desc=desc, disable=desc is None, leave=False)
    while len(losses) < total and not stop:
        for batch in epoch_batches(epoch):
            with autocast(device):
                loss = step_loss(batch)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(flat, 1.0)
            scaler.step(opt)
            scaler.update()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            if on_step is not None:
                stop = bool(on_step(len(losses), losses[-1], model))
                model.train()
            if len(losses) >= total or stop:
                break
        epoch += 1
    bar.close()
    model.eval()
    return losses


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of ``model`` that require gradients (ValueError if there are none)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    return params


def train(
    model: torch.nn.Module,
    split: Split,
    tokenizer,
    cfg: TrainConfig,
    loss_fn: LossFn = cross_entropy,
    desc: str | None = "train",
    on_step: StepHook | None = None,
    params: ParamGroups | None = None,
) -> list[float]:
    """Train a classifier in place on ``split`` with :func:`fit`.

    Batches come from :func:`distillery.data.prepared.batches` (reshuffled each epoch, length-sorted
    within). ``params`` (default: every parameter that requires gradients) may be AdamW
    parameter groups with their own learning rates. Parameters of ``loss_fn`` (when it is an
    ``nn.Module``) are optimised too; its ``model_kwargs`` (e.g. ``output_hidden_states``) go
    to every forward.

    Returns:
        The loss of every step.
    """
    if len(split) == 0:
        raise ValueError("cannot train on an empty split")
    params = list(params) if params is not None else trainable(model)
    if isinstance(loss_fn, torch.nn.Module):
        extra = [p for p in loss_fn.parameters() if p.requires_grad]
        params += [{"params": extra}] if params and isinstance(params[0], dict) else extra
        loss_fn.train()
    model_kwargs = dict(getattr(loss_fn, "model_kwargs", {}))
    device = model_device(model)
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn.to(device)

    def epoch_batches(epoch: int):
        return batches(split, tokenizer, cfg.batch_size, cfg.max_length, shuffle=True,
                       seed=cfg.seed + epoch, sort_by_length=True)

    def step_loss(batch) -> torch.Tensor:
        enc, labels, idx = batch
        enc = {k: v.to(device) for k, v in enc.items()}
        return loss_fn(model(**enc, **model_kwargs), labels.to(device), idx, enc)

    return fit(model, params, cfg, len(split), epoch_batches, step_loss, desc, on_step)
