"""LoRA fine-tuning of a causal LM on the classification task, merging and saving.

The objective is the causal-LM loss on the gold class's verbalizer tokens only: each
training sequence is ``context + verbalizer`` (tokenised by
:func:`~distillery.teachers.causal.prompt.encode_requests`, as for scoring), and its labels are
``-100`` on the prompt and on padding, so the model learns to continue the prompt with the right
verbalizer and nothing else. Adapters go on the attention and MLP projections
(:func:`distillery.teachers.causal.archs.lora_targets`). Training runs the project's one
optimisation loop, :func:`distillery.modeling.training.fit` (AdamW, linear warm-up and decay,
gradient clipping at 1, a tqdm bar, ``on_step`` hooks, autocast on a GPU), over batches of a seeded
shuffle per epoch.

A fine-tuned classifier is saved as a merged ``save_pretrained`` folder (safetensors) with
its tokenizer; the prompt, verbalizers and label names go into its config
(``distillery_prompt``), so :func:`load_causal_classifier` rebuilds the classifier alone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

import torch
from peft import LoraConfig, TaskType, get_peft_model

from distillery.core.device import model_device
from distillery.core.io import UserError, atomic_path, seed_everything
from distillery.data.prepared import Split
from distillery.modeling import training
from distillery.modeling.loading import PROMPT_ATTR
from distillery.modeling.lora import LoraHyper
from distillery.modeling.training import StepHook, TrainConfig
from distillery.teachers.causal import archs
from distillery.teachers.causal.loading import load_causal_lm
from distillery.teachers.causal.prompt import Prompt, Request, encode_requests
from distillery.teachers.causal.scoring import left_pad

logger = logging.getLogger(__name__)

IGNORE = -100
"""Label of positions that carry no loss (prompt and padding)."""


def apply_lora(model, hp: LoraHyper, target_modules: list[str] | None = None,
               key: str = "hpo.target_modules"):
    """Wrap a causal LM with LoRA adapters on ``target_modules`` (module-name suffixes;
    None: attention and MLP projections of its architecture).

    Raises:
        UserError: a target matches no module of the model.
    """
    targets = list(target_modules) if target_modules else archs.lora_targets(model.config)
    if isinstance(targets, list):
        names = [n for n, _ in model.named_modules()]
        missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
        if missing:
            raise UserError(f"{key}: {missing} match no module of this {model.config.model_type} "
                            f"model; its defaults are {archs.lora_targets(model.config)}")
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=hp.rank, lora_alpha=hp.alpha,
                     lora_dropout=hp.dropout, target_modules=targets,
                     fan_in_fan_out=archs.fan_in_fan_out(model.config))
    peft_model = get_peft_model(model, cfg)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    logger.info("LoRA r=%d alpha=%d on %s: %d / %d parameters trainable", hp.rank, hp.alpha,
                targets, trainable, total)
    return peft_model


def training_batch(requests: Sequence[Request], labels: Sequence[int], max_length: int,
                   device: torch.device) -> dict[str, torch.Tensor]:
    """Left-padded ``context + gold verbalizer`` rows and their labels ``(B, T)``: the
    verbalizer's token ids at its positions, ``-100`` elsewhere (the model shifts them).

    Rows keep their last ``max_length + 1`` tokens, so the model sees what scoring gives it.
    """
    rows, conts = [], []
    for r, y in zip(requests, labels, strict=True):
        cont = r.continuations[y]
        rows.append((r.context + cont)[-(max_length + 1):])
        conts.append(cont)
    enc = left_pad(rows, device)
    target = torch.full_like(enc["input_ids"], IGNORE)
    for i, cont in enumerate(conts):
        target[i, target.shape[1] - len(cont):] = torch.tensor(cont, device=device)
    enc["labels"] = target
    return enc


def train(model, tokenizer, prompt: Prompt, split: Split, cfg: TrainConfig,
          desc: str | None = "lora", on_step: StepHook | None = None) -> list[float]:
    """Train ``model`` (e.g. LoRA-wrapped) in place on the verbalizer tokens of ``split``, with
    the project's one optimisation loop (:func:`distillery.modeling.training.fit`).

    Returns:
        The loss of every step.

    Raises:
        ValueError: an empty split, unlabelled examples, or nothing to train.
    """
    if len(split) == 0:
        raise ValueError("cannot train on an empty split")
    if min(split.labels) < 0:
        raise ValueError("the causal classifier trains on labelled examples only (label -1)")
    params = training.trainable(model)
    prompt.check_tokens(tokenizer)
    requests = encode_requests(tokenizer, prompt, split.texts, split.pairs)
    device = model_device(model)

    def epoch_batches(epoch: int):
        order = list(range(len(split)))
        random.Random(cfg.seed + epoch).shuffle(order)
        return (order[start:start + cfg.batch_size]
                for start in range(0, len(order), cfg.batch_size))

    def step_loss(idx: list[int]) -> torch.Tensor:
        enc = training_batch([requests[i] for i in idx], [split.labels[i] for i in idx],
                             cfg.max_length, device)
        return model(**enc, use_cache=False).loss

    return training.fit(model, params, cfg, len(split), epoch_batches, step_loss, desc, on_step)


def fine_tune(model, tokenizer, prompt: Prompt, split: Split, hp: LoraHyper, cfg: TrainConfig,
              target_modules: list[str] | None = None, desc: str | None = "lora",
              on_step: StepHook | None = None):
    """Seed with ``cfg.seed``, LoRA-wrap ``model`` (in place, on its device) and train it on
    ``split``; return the unmerged peft model (score it as is, or :func:`merge` it to save)."""
    seed_everything(cfg.seed)
    peft_model = apply_lora(model, hp, target_modules)
    train(peft_model, tokenizer, prompt, split, cfg, desc=desc, on_step=on_step)
    return peft_model


def merge(peft_model):
    """Fold the adapters into the base weights: a plain transformers causal LM again."""
    return peft_model.merge_and_unload()


def save_causal_classifier(model, tokenizer, prompt: Prompt, out: str | Path) -> None:
    """Save a (merged) causal classifier atomically: safetensors weights, tokenizer, and the
    prompt in ``config.distillery_prompt``."""
    if hasattr(model, "peft_config"):
        raise ValueError("merge the LoRA adapters first (finetune.merge)")
    setattr(model.config, PROMPT_ATTR, prompt.to_dict())
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def load_causal_classifier(folder: str | Path, device: torch.device | str = "cpu"):
    """A classifier saved by :func:`save_causal_classifier`.

    Returns:
        ``(model, tokenizer, prompt)``.

    Raises:
        UserError: the folder is a causal LM without a saved prompt.
    """
    model, tokenizer = load_causal_lm(str(folder), device)
    saved = getattr(model.config, PROMPT_ATTR, None)
    if saved is None:
        raise UserError(f"{folder} is a causal LM but not a saved causal classifier (its config "
                        f"has no {PROMPT_ATTR}); build a Prompt for it instead")
    return model, tokenizer, Prompt.from_dict(saved)
