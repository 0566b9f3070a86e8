"""Prediction and classification metrics for torch models and ONNX Runtime sessions.

Every variant is scored the same way: logits on a split (through the one tokenisation path,
``data.batches``), then accuracy, macro-F1, per-class precision / recall / F1 and the
confusion pairs from scikit-learn. ``task.metric`` picks which score drives selection.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
from sklearn.metrics import f1_score, precision_recall_fscore_support
from tqdm.auto import tqdm

from distillery.core.device import autocast, model_device
from distillery.data.prepared import Split, batches

logger = logging.getLogger(__name__)

Metric = Literal["accuracy", "macro_f1"]


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
    device = model_device(model)
    out = np.zeros((len(split), model.config.num_labels), dtype=np.float32)
    it = batches(split, tokenizer, batch_size, max_length, sort_by_length=True)
    total = -(-len(split) // batch_size)
    for enc, _, idx in tqdm(it, total=total, desc=desc, disable=desc is None, leave=False):
        enc = {k: v.to(device) for k, v in enc.items()}
        with autocast(device):
            out[idx] = model(**enc).logits.float().cpu().numpy()  # (B, C)
    return out


def onnx_logits(
    session, split: Split, tokenizer, max_length: int, batch_size: int = 64
) -> np.ndarray:
    """Logits of an ONNX Runtime session; feeds only the inputs the session declares."""
    names = {i.name for i in session.get_inputs()}
    out = None
    for enc, _, idx in batches(split, tokenizer, batch_size, max_length, sort_by_length=True):
        feeds = {k: v.numpy().astype(np.int64) for k, v in enc.items() if k in names}
        (logits,) = session.run(["logits"], feeds)  # (B, C)
        if out is None:
            out = np.zeros((len(split), logits.shape[-1]), dtype=np.float32)
        out[idx] = logits
    if out is None:
        raise ValueError("cannot score an empty split")
    return out


def _check(logits: np.ndarray, labels) -> np.ndarray:
    labels = np.asarray(labels)
    if len(labels) != len(logits):
        raise ValueError(f"{len(logits)} predictions for {len(labels)} labels")
    if (labels < 0).any():
        raise ValueError("cannot score unlabelled examples (label -1)")
    return labels


def accuracy(logits: np.ndarray, labels) -> float:
    """Fraction of rows whose argmax equals the label."""
    labels = _check(logits, labels)
    return float((logits.argmax(-1) == labels).mean())


def macro_f1(logits: np.ndarray, labels) -> float:
    """Unweighted mean of the per-class F1 over all ``C`` classes (absent ones count 0)."""
    labels = _check(logits, labels)
    return float(f1_score(labels, logits.argmax(-1), labels=np.arange(logits.shape[-1]),
                          average="macro", zero_division=0))


def score(logits: np.ndarray, labels, metric: Metric) -> float:
    """The ``task.metric`` score."""
    if metric == "accuracy":
        return accuracy(logits, labels)
    if metric == "macro_f1":
        return macro_f1(logits, labels)
    raise ValueError(f"task.metric: got {metric!r}, expected 'accuracy' or 'macro_f1'")


def scores(logits: np.ndarray, labels) -> dict[str, float]:
    """Accuracy and macro-F1 together."""
    return {"accuracy": accuracy(logits, labels), "macro_f1": macro_f1(logits, labels)}


def per_class(logits: np.ndarray, labels, names: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class, keyed by label name."""
    labels = _check(logits, labels)
    if len(names) != logits.shape[-1]:
        raise ValueError(f"{len(names)} label names for {logits.shape[-1]} classes")
    p, r, f, n = precision_recall_fscore_support(
        labels, logits.argmax(-1), labels=np.arange(len(names)), zero_division=0
    )
    return {name: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                   "f1": round(float(f[i]), 4), "support": int(n[i])}
            for i, name in enumerate(names)}


def confusion_rows(logits: np.ndarray, labels, names: list[str]) -> list[dict[str, str]]:
    """One ``{actual, predicted}`` row per example (DVC's ``confusion`` plot template)."""
    labels = _check(logits, labels)
    return [{"actual": names[y], "predicted": names[p]}
            for y, p in zip(labels.tolist(), logits.argmax(-1).tolist(), strict=True)]


def evaluate(model: torch.nn.Module, split: Split, tokenizer, max_length: int,
             metric: Metric = "accuracy") -> float:
    """The ``metric`` score of ``model`` on a labelled split."""
    return score(predict_logits(model, split, tokenizer, max_length), split.labels, metric)
