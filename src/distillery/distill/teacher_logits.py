"""The teacher's logits on the prepared splits: computed once by stage ``label``, read by every
stage that distils from the teacher (nas's KD proxy, distill, compress's recovery).

Labelling is the costliest inference of the study when the teacher is large (SmolLM2-135M
labels ~30 texts/s on 2 CPU cores): computing it once, as a DVC output, means a change to
``nas.*``, ``distill.*`` or ``compress.*`` reruns those stages without relabelling, and DVC's
cache keeps the logits of every teacher a user has tried.

Layout of the folder: ``<split>.npy`` per split (float32 ``(N, C)`` in the split's order,
``np.save`` without pickle) and ``logits.json``: for each split its length and the SHA-256 of
its texts (and pairs), the label names, ``max_length`` and the teacher folder's fingerprint.
:func:`load` refuses logits that are not of the split it is given (another ``data/prepared``,
another label set), naming what differs. For a causal-LM teacher saved in classifier form
(:mod:`distillery.teachers.causal.classifier`) the logits are the verbalizers' next-token logits:
their softmax is the teacher's class distribution, the same as lm-eval's class log-likelihoods give.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from distillery.core.io import UserError, atomic_path, read_json, write_json
from distillery.data.prepared import Split
from distillery.measure import evaluate

SPLITS = ("train", "transfer", "val", "eval")
"""The prepared splits labelled: what the KD losses train on (train, transfer) and what
stages report the teacher's score on (val, eval)."""
META = "logits.json"
FORMAT = 1


def split_digest(split: Split) -> str:
    """SHA-256 of a split's texts (and pairs), in order (labels do not change the logits)."""
    payload = json.dumps({"texts": split.texts, "pairs": split.pairs}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def compute(teacher, tokenizer, splits: dict[str, Split], max_length: int,
            batch_size: int = 128) -> dict[str, np.ndarray]:
    """The teacher's logits ``(N, C)`` on each of ``splits`` (a progress bar per split)."""
    return {name: evaluate.predict_logits(teacher, split, tokenizer, max_length, batch_size,
                                          desc=f"teacher logits ({name})")
            for name, split in splits.items()}


def save(folder: str | Path, logits: dict[str, np.ndarray], splits: dict[str, Split],
         names: list[str], max_length: int, teacher: str) -> None:
    """Write ``logits`` and their ``logits.json`` to ``folder`` (atomically, as one folder).

    Args:
        teacher: what identifies the teacher (the fingerprint of its folder).
    """
    meta: dict[str, Any] = {"format": FORMAT, "names": list(names), "max_length": max_length,
                            "teacher": teacher, "splits": {}}
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        for name, arr in logits.items():
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if arr.shape != (len(splits[name]), len(names)):
                raise UserError(f"logits of {name}: shape {arr.shape}, expected "
                                 f"({len(splits[name])}, {len(names)})")
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            meta["splits"][name] = {"n": len(splits[name]), "sha256": split_digest(splits[name])}
        write_json(tmp / META, meta)


def load(folder: str | Path, name: str, split: Split) -> np.ndarray:
    """The teacher's logits on ``split`` (the prepared split ``name``), checked to be of it.

    Raises:
        UserError: the folder or split is missing, or its logits are of other texts (the
            logits were computed on another ``data/prepared``: rerun stage ``label``).
    """
    folder = Path(folder)
    if not (folder / META).is_file():
        raise UserError(f"{folder}: no teacher logits ({META} missing); run stage `label` "
                        f"(dvc repro label) first")
    meta = read_json(folder / META)
    entry = meta["splits"].get(name)
    if meta.get("format") != FORMAT or entry is None:
        raise UserError(f"{folder}: no logits of split {name!r} (has "
                        f"{sorted(meta['splits'])}, format {meta.get('format')}); rerun stage "
                        f"`label`")
    if entry["n"] != len(split) or entry["sha256"] != split_digest(split):
        raise UserError(f"{folder}: the logits of {name!r} are of {entry['n']} other texts "
                        f"than the {len(split)} given (another data/prepared?); rerun stage "
                        f"`label`")
    arr = np.load(folder / f"{name}.npy", allow_pickle=False)
    if arr.shape != (len(split), len(meta["names"])) or arr.dtype != np.float32:
        raise UserError(f"{folder}/{name}.npy: {arr.dtype} {arr.shape}, expected float32 "
                        f"({len(split)}, {len(meta['names'])}); rerun stage `label`")
    return arr


def load_many(folder: str | Path, splits: dict[str, Split], *names: str) -> np.ndarray:
    """The logits of several splits, concatenated in the order of ``names`` (as the KD
    corpus ``train + transfer`` is)."""
    return np.concatenate([load(folder, n, splits[n]) for n in names], axis=0)
