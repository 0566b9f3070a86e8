"""lm-eval's ``HFLM`` around an in-memory causal LM: the one object through which lm-eval
scores a teacher (:mod:`distillery.lmeval.evaluation`, :mod:`distillery.lmeval.perplexity`)."""

from __future__ import annotations

import copy

import torch

from distillery.core.device import autocast_dtype, model_device


def hf_lm(model, tokenizer, batch_size: int = 16, max_length: int | None = None,
          add_bos_token: bool | None = None):
    """lm-eval's ``HFLM(pretrained=model, tokenizer=...)`` (plain or peft-wrapped model; no
    reload).

    The tokenizer is copied (``HFLM`` gives it a pad token); ``HFLM`` puts the model in eval
    mode. On a GPU the forwards run under the autocast dtype of :mod:`distillery.core.device`
    with a float32 softmax, as :func:`~distillery.teachers.causal.scoring.class_log_scores` does;
    on the CPU in fp32.

    Args:
        batch_size: requests (or rolling windows) per forward.
        max_length: tokens per forward (longer inputs lose their start; the window length of
            perplexity); None: the model's context length (``max_position_embeddings``).
        add_bos_token: None: the tokenizer's own special tokens (as
            :func:`~distillery.teachers.causal.prompt.encode_requests` tokenises, so classification
            scores agree); False for ``loglikelihood_rolling``, which prepends the BOS itself
            (:mod:`distillery.lmeval.perplexity`).
    """
    from lm_eval.models.huggingface import HFLM

    dtype = autocast_dtype(model_device(model))
    mixed = None if dtype == torch.float32 else dtype
    return HFLM(pretrained=model, tokenizer=copy.deepcopy(tokenizer), batch_size=batch_size,
                max_length=max_length, add_bos_token=add_bos_token, mixed_precision_dtype=mixed,
                softmax_dtype=torch.float32 if mixed is not None else None)
