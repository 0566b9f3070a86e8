"""Prediction and accuracy for torch models and ONNX Runtime sessions."""

from __future__ import annotations

import logging

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery.data import Split, batches

logger = logging.getLogger(__name__)


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    split: Split,
    tokenizer,
    max_length: int,
    batch_size: int = 64,
    desc: str | None = None,
) -> np.ndarray:
    """Logits ``(N, num_labels)`` of ``model`` on ``split``, in the split's order."""
    model.eval()
    out = np.zeros((len(split), model.config.num_labels), dtype=np.float32)
    it = batches(split, tokenizer, batch_size, max_length, sort_by_length=True)
    total = -(-len(split) // batch_size)
    for enc, _, idx in tqdm(it, total=total, desc=desc, disable=desc is None, leave=False):
        out[idx] = model(**enc).logits.float().numpy()  # (B, C)
    return out


def accuracy(logits: np.ndarray, labels: list[int] | np.ndarray) -> float:
    """Fraction of rows whose argmax equals the label."""
    labels = np.asarray(labels)
    if len(labels) != len(logits):
        raise ValueError(f"{len(logits)} predictions for {len(labels)} labels")
    return float((logits.argmax(-1) == labels).mean())


def evaluate(model: torch.nn.Module, split: Split, tokenizer, max_length: int) -> float:
    """Accuracy of ``model`` on a labelled split."""
    return accuracy(predict_logits(model, split, tokenizer, max_length), split.labels)


def onnx_logits(
    session, split: Split, tokenizer, max_length: int, batch_size: int = 64
) -> np.ndarray:
    """Logits of an ONNX Runtime session with inputs ``input_ids`` and ``attention_mask``."""
    out = None
    for enc, _, idx in batches(split, tokenizer, batch_size, max_length, sort_by_length=True):
        feeds = {k: v.numpy().astype(np.int64) for k, v in enc.items()}
        (logits,) = session.run(["logits"], feeds)  # (B, C)
        if out is None:
            out = np.zeros((len(split), logits.shape[-1]), dtype=np.float32)
        out[idx] = logits
    assert out is not None
    return out
