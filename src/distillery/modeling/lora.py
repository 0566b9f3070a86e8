"""LoRA fine-tuning of a sequence classifier with peft, and merging for deployment."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import PreTrainedModel

from distillery.modeling import families

logger = logging.getLogger(__name__)


@dataclass
class LoraHyper:
    """One point of the HPO search space."""

    lr: float
    rank: int
    alpha: int
    dropout: float
    weight_decay: float = 0.01
    """AdamW weight decay of the trained parameters (adapters and head)."""


def apply_lora(
    model: PreTrainedModel, hp: LoraHyper, target_modules: list[str] | None = None
) -> PreTrainedModel:
    """Wrap ``model`` with LoRA adapters on ``target_modules`` (module names or name suffixes;
    None: every linear layer of the transformer layers, attention and feed-forward, as
    :func:`default_targets`); the family's classification head trains in full."""
    family = families.get(model)
    cfg = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=hp.rank,
        lora_alpha=hp.alpha,
        lora_dropout=hp.dropout,
        target_modules=list(target_modules or default_targets(model)),
        modules_to_save=list(family.head),
    )
    peft_model = get_peft_model(model, cfg)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    logger.info("LoRA r=%d alpha=%d: %d / %d parameters trainable", hp.rank, hp.alpha,
                trainable, total)
    return peft_model


def default_targets(model: PreTrainedModel) -> list[str]:
    """Full names of the ``nn.Linear`` modules in the transformer layers of ``model``."""
    prefix = families.get(model).layers
    return [f"{prefix}.{name}" for name, m in families.layers(model).named_modules()
            if isinstance(m, torch.nn.Linear)]


def merge(peft_model) -> PreTrainedModel:
    """Fold the adapters into the base weights: a plain transformers model again."""
    return peft_model.merge_and_unload()
