"""Class scores of a causal LM: the summed log-likelihood of each class's verbalizer tokens
after the prompt, the numbers lm-eval's ``HFLM.loglikelihood`` gives for the same context and
continuation.

Rows are left-padded with explicit ``position_ids`` (each row counts its positions from its
first real token), so absolute position embeddings (GPT-2) and RoPE (Llama, Qwen2) see the
same positions as an unpadded sequence, and only the last positions' logits are computed
(``logits_to_keep``): the vocabulary projection is the largest tensor of a small LM's forward.
When every class of a batch is one token long, one row per example gives all classes from
its next-token distribution (the fast path); otherwise every ``(example, class)`` pair is a
row of the same batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from distillery.core.device import autocast, model_device
from distillery.core.io import UserError
from distillery.data.prepared import Split
from distillery.teachers.causal.prompt import Prompt, Request, encode_requests

logger = logging.getLogger(__name__)


def left_pad(rows: Sequence[Sequence[int]], device: torch.device,
             pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Left-padded ``input_ids``, ``attention_mask`` and ``position_ids`` ``(R, T)``.

    Positions count from each row's first real token (0 on padding), so a padded row reads
    the positions an unpadded one would. ``pad_id`` is never attended to (GPT-2 has no pad
    token, so none is needed).
    """
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device),
            "position_ids": position_ids.to(device)}


def _truncate(tokens: list[int], max_length: int) -> list[int]:
    """Keep the last ``max_length`` tokens (lm-eval truncates the context from the left)."""
    return tokens[-max_length:]


def score_requests(model: torch.nn.Module, requests: Sequence[Request], max_length: int,
                   batch_size: int = 16, desc: str | None = None) -> np.ndarray:
    """Class log-likelihoods ``(N, C)`` of tokenised requests.

    Args:
        model: a causal LM (plain or peft-wrapped), on its device.
        requests: from :func:`~distillery.teachers.causal.prompt.encode_requests`.
        max_length: model input tokens per row; longer contexts lose their start.
        batch_size: examples per forward (a multi-token batch runs ``batch_size * C`` rows).
        desc: progress-bar label (None: no bar).
    """
    if not requests:
        return np.zeros((0, 0), dtype=np.float32)
    n_cls = len(requests[0].continuations)
    if any(not c for r in requests for c in r.continuations):
        raise ValueError("a verbalizer merged into an example's last prompt token and has no "
                         "token of its own: end the prompt with a non-letter such as ':'")
    too_long = [len(c) for r in requests for c in r.continuations if len(c) > max_length]
    if too_long:
        raise UserError(f"a verbalizer of {max(too_long)} tokens does not fit max_length "
                         f"{max_length}")
    was_training = model.training
    model.eval()
    device = model_device(model)
    out = np.zeros((len(requests), n_cls), dtype=np.float32)
    order = sorted(range(len(requests)), key=lambda i: len(requests[i].context))
    starts = range(0, len(order), batch_size)
    with torch.inference_mode(), autocast(device):
        for start in tqdm(starts, desc=desc, disable=desc is None, leave=False):
            idx = order[start:start + batch_size]
            out[idx] = _score_batch(model, [requests[i] for i in idx], max_length, device)
    model.train(was_training)
    return out


def _score_batch(model, batch: list[Request], max_length: int,
                 device: torch.device) -> np.ndarray:
    """``(B, C)`` log-likelihoods of one batch of requests."""
    n_cls = len(batch[0].continuations)
    if all(len(c) == 1 for r in batch for c in r.continuations):  # fast path: 1 row / example
        enc = left_pad([_truncate(r.context, max_length) for r in batch], device)
        logits = model(**enc, logits_to_keep=1, use_cache=False).logits  # (B, 1, V)
        logp = F.log_softmax(logits[:, -1].float(), dim=-1)  # (B, V)
        tokens = torch.tensor([[c[0] for c in r.continuations] for r in batch], device=device)
        return logp.gather(1, tokens).cpu().numpy()  # (B, C)
    conts = [c for r in batch for c in r.continuations]  # B * C rows, example-major
    rows = [_truncate((r.context + c)[:-1], max_length) for r in batch for c in r.continuations]
    keep = max(len(c) for c in conts)
    enc = left_pad(rows, device)
    logits = model(**enc, logits_to_keep=keep, use_cache=False).logits  # (B*C, K, V)
    logp = F.log_softmax(logits.float(), dim=-1)
    scores = torch.empty(len(rows), device=device)
    for i, c in enumerate(conts):
        tok = torch.tensor(c, device=device)
        scores[i] = logp[i, keep - len(c):].gather(1, tok[:, None]).sum()
    return scores.view(len(batch), n_cls).cpu().numpy()


def class_log_scores(model: torch.nn.Module, tokenizer, prompt: Prompt, split: Split,
                     max_length: int, batch_size: int = 16,
                     desc: str | None = None) -> np.ndarray:
    """Class log-scores ``(N, C)`` of ``split``: per example and class, the summed
    log-likelihood of the class's verbalizer tokens after the filled prompt.

    Their argmax is the prediction; their softmax the class distribution (e.g. a KD target).
    Runs on the model's device, under autocast on a GPU (:mod:`distillery.core.device`).

    Raises:
        ValueError: the split's kind (pairs or not) does not fit the prompt.
        UserError: a verbalizer that tokenises to nothing, or two alike
            (:meth:`Prompt.check_tokens`).
    """
    if (split.pairs is not None) != prompt.pair:
        raise UserError(f"the prompt is for {'pairs' if prompt.pair else 'single texts'}, the "
                         f"split has {'pairs' if split.pairs is not None else 'single texts'}")
    prompt.check_tokens(tokenizer)
    requests = encode_requests(tokenizer, prompt, split.texts, split.pairs)
    return score_requests(model, requests, max_length, batch_size, desc)
