"""Teacher targets of distillation from a causal-LM teacher, computed once and cached.

What the distill stage gets from an encoder teacher is ``evaluate.predict_logits(teacher,
corpus, ...)``: ``(N, C)`` float32 logits in the corpus's order, turned into soft targets
``softmax(logits / T)`` by :class:`distillery.distill.DistillLoss`. A causal-LM teacher gives
the same array from :func:`teacher_log_scores`: per example and class, the summed
log-likelihood of the class's verbalizer tokens after the prompt
(:func:`~distillery.llm.scoring.class_log_scores`). They are not normalised over the classes
(each row sums to less than 1 in probability; all values are <= 0), but they act as logits:
the softmax over the classes is the teacher's class distribution restricted to the
verbalizers, ``p_c = P(v_c | prompt) / sum_c' P(v_c' | prompt)``, and ``softmax(x / T)`` is
its tempered version. So the stage swaps ``predict_logits`` for :func:`teacher_log_scores`
and changes nothing else (the raw scores are cached, not the softmax: the KD loss applies
``T``).

The cache is a ``.npy`` file (``np.save``, ``allow_pickle=False``) with a JSON sidecar
(``<name>.json``) that records what the scores are of: the split (SHA-256 of its texts and
pairs, and its length), the prompt (template, verbalizers, labels), the model (a SHA-256 of
its weights unless the caller names it), ``max_length``, and the ``.npy`` file's own SHA-256.
A cache whose sidecar differs, or whose array does not match its recorded digest (e.g. a run
killed between the two writes), is stale: :func:`read_log_scores` refuses it
(:class:`StaleCache`) and :func:`teacher_log_scores` recomputes and overwrites it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distillery.data import Split
from distillery.io import atomic_path
from distillery.llm.prompt import Prompt
from distillery.llm.scoring import class_log_scores

logger = logging.getLogger(__name__)

FORMAT = 1
"""Version of the cache layout (a different one is stale)."""
MEANING = ("class log-likelihoods (N, C) float32: summed log-prob of each class's verbalizer "
           "tokens after the prompt; softmax over classes = teacher distribution")


class StaleCache(ValueError):
    """A cache of teacher scores that is not of this split, prompt, model or layout."""


def split_digest(split: Split) -> str:
    """SHA-256 of a split's texts (and pairs), in order (labels do not change the scores)."""
    payload = json.dumps({"texts": split.texts, "pairs": split.pairs}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@torch.no_grad()
def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers (names, dtypes, bytes; ~1 s per GB)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_key(prompt: Prompt, split: Split, model_id: str, max_length: int) -> dict[str, Any]:
    """What a cache must record to be of these scores (compared key by key)."""
    return {"format": FORMAT, "meaning": MEANING, "model": model_id,
            "prompt": prompt.to_dict(), "labels": list(prompt.labels),
            "max_length": int(max_length), "n": len(split), "split_sha256": split_digest(split)}


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _npy_bytes(scores: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(scores, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def write_log_scores(path: str | Path, scores: np.ndarray, key: dict[str, Any]) -> None:
    """Write ``scores`` ``(N, C)`` to ``path`` (``.npy``) and ``key`` (:func:`cache_key`) to
    its sidecar, each atomically; the sidecar goes last and holds the array's SHA-256."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"teacher scores cache: {path} must end in .npy")
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape != (key["n"], len(key["labels"])):
        raise ValueError(f"scores of shape {scores.shape} for {key['n']} examples and "
                         f"{len(key['labels'])} classes")
    data = _npy_bytes(scores)
    _sidecar(path).unlink(missing_ok=True)  # no sidecar may vouch for a half-written array
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    meta = {**key, "shape": list(scores.shape), "npy_sha256": hashlib.sha256(data).hexdigest()}
    with atomic_path(_sidecar(path)) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_log_scores(path: str | Path, key: dict[str, Any]) -> np.ndarray:
    """The cached scores, if they are of ``key`` (:func:`cache_key`).

    Raises:
        FileNotFoundError: no cache (array or sidecar missing).
        StaleCache: naming what differs (split, prompt, model, ``max_length``, layout) or
            that the array does not match its sidecar.
    """
    path = Path(path)
    if not path.is_file() or not _sidecar(path).is_file():
        raise FileNotFoundError(f"no teacher scores cached at {path}")
    meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    differ = sorted(k for k in key if meta.get(k) != key[k])
    if differ:
        raise StaleCache(f"teacher scores cached at {path} are of another "
                         f"{', '.join(differ)}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("npy_sha256"):
        raise StaleCache(f"teacher scores cached at {path} do not match their sidecar "
                         f"{_sidecar(path).name} (a write was interrupted?)")
    scores = np.load(io.BytesIO(data), allow_pickle=False)
    if scores.dtype != np.float32 or list(scores.shape) != meta.get("shape"):
        raise StaleCache(f"teacher scores cached at {path}: {scores.dtype} {scores.shape}, "
                         f"expected float32 {meta.get('shape')}")
    return scores


def teacher_log_scores(model: torch.nn.Module, tokenizer, prompt: Prompt, split: Split,
                       max_length: int, cache: str | Path | None = None,
                       model_id: str | None = None, batch_size: int = 16,
                       desc: str | None = "teacher scores") -> np.ndarray:
    """The teacher's class log-scores ``(N, C)`` float32 on ``split``, in its order: the
    drop-in for ``evaluate.predict_logits`` of an encoder teacher (module docstring).

    Args:
        model / tokenizer / prompt: the causal-LM classifier (e.g. from
            :func:`~distillery.llm.finetune.load_causal_classifier`).
        max_length: tokens per scored row (``teacher.max_length``).
        cache: ``.npy`` path; read if it is of this split, prompt, model and ``max_length``,
            else (re)computed and written. None: no cache.
        model_id: identity of the weights recorded in the cache; None: :func:`weights_digest`
            (only computed when ``cache`` is given).
        batch_size / desc: of :func:`~distillery.llm.scoring.class_log_scores`.
    """
    if cache is None:
        return class_log_scores(model, tokenizer, prompt, split, max_length, batch_size, desc)
    key = cache_key(prompt, split, model_id or weights_digest(model), max_length)
    try:
        scores = read_log_scores(cache, key)
        logger.info("teacher scores of %d examples read from %s", len(split), cache)
        return scores
    except FileNotFoundError:
        pass
    except StaleCache as err:
        logger.warning("%s: recomputing", err)
    scores = class_log_scores(model, tokenizer, prompt, split, max_length, batch_size, desc)
    write_log_scores(cache, scores, key)
    return scores
