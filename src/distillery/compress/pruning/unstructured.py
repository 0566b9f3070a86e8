"""Global unstructured magnitude pruning with ``torch.nn.utils.prune``: zeros in dense weights
(smaller once compressed, no faster on dense kernels)."""

from __future__ import annotations

import logging

import torch
from torch.nn.utils import prune
from transformers import PreTrainedModel

from distillery.modeling import families

logger = logging.getLogger(__name__)


def prunable(model: PreTrainedModel) -> list[tuple[torch.nn.Module, str]]:
    """Weights of every ``nn.Linear`` in the transformer layers (embeddings and the head are
    kept), whatever the encoder family."""
    return [(m, "weight") for m in families.layers(model).modules()
            if isinstance(m, torch.nn.Linear)]


def apply_global_magnitude(model: torch.nn.Module, sparsity: float) -> None:
    """Mask the ``sparsity`` fraction of smallest-magnitude encoder weights (masks stay
    attached, so a recovery fine-tune keeps pruned weights at zero)."""
    params = prunable(model)
    if not params:
        raise ValueError("model has no encoder Linear layers to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)


def make_permanent(model: torch.nn.Module) -> None:
    """Fold the masks into the weights and drop the pruning hooks."""
    for module, name in prunable(model):
        if prune.is_pruned(module):
            prune.remove(module, name)


def sparsity(model: torch.nn.Module) -> float:
    """Fraction of exact zeros among the prunable weights."""
    zeros = total = 0
    for module, name in prunable(model):
        w = getattr(module, name)
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / total
