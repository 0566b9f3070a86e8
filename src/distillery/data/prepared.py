"""Prepared splits in memory and on disk, label names, and the one tokenisation path.

A prepared folder (output of stage ``prepare``) holds ``train/val/transfer/eval.jsonl``, one
``{"text": ..., "text_pair": ... (pair tasks only), "label": int}`` object per line (label
``-1`` = unlabelled), and ``labels.json`` (``{"names": [...], "pair": bool}``). Every model
stage reads it with :func:`load_prepared` and tokenises with :func:`encode` (through
:func:`batches`), so training, evaluation, ONNX validation and benchmark feeds all see the
same inputs.

Reading raw sources is :mod:`distillery.data.sources`; subsampling is :mod:`distillery.data.splits`.
torch is imported lazily so that the cheap ``data`` stage never loads it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillery.core.io import UserError, atomic_path

if TYPE_CHECKING:
    import torch

PREPARED = ("train", "val", "transfer", "eval")
"""Split files ``<name>.jsonl`` of a prepared folder."""
LABELS_FILE = "labels.json"


@dataclass
class Split:
    """Texts (and second texts of pairs) with class ids (``-1`` marks an unlabelled example)."""

    texts: list[str]
    labels: list[int]
    pairs: list[str] | None = None
    """Second sentence of sentence-pair tasks, else None."""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: Sequence[int]) -> Split:
        """The examples at ``idx``, in that order."""
        pairs = None if self.pairs is None else [self.pairs[i] for i in idx]
        return Split([self.texts[i] for i in idx], [self.labels[i] for i in idx], pairs)


def concat(*splits: Split) -> Split:
    """The examples of ``splits`` one after the other (the distillation corpus is
    ``concat(train, transfer)``, matching :func:`distillery.distill.teacher_logits.load_many`'s
    rows); pairs follow the first split: None if it has none."""
    pairs = None if splits[0].pairs is None else [p for s in splits for p in (s.pairs or [])]
    return Split([t for s in splits for t in s.texts], [y for s in splits for y in s.labels],
                 pairs)


# --------------------------------------------------------------------------- files


def write_split(path: str | Path, split: Split) -> None:
    """Write ``split`` as JSON lines, atomically (``text_pair`` only for pair tasks)."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for i in range(len(split)):
            row: dict[str, Any] = {"text": split.texts[i]}
            if split.pairs is not None:
                row["text_pair"] = split.pairs[i]
            row["label"] = int(split.labels[i])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_split(path: str | Path) -> Split:
    """Read a split written by :func:`write_split`.

    Raises:
        FileNotFoundError: the file is missing (run stage ``prepare``).
        ValueError: a line is not a ``{"text", "label"}`` object, or pairs are mixed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path} not found: run `dvc repro prepare` (it writes the prepared splits)")
    texts, labels, pairs = [], [], []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                texts.append(str(row["text"]))
                labels.append(int(row["label"]))
            except (ValueError, KeyError, TypeError) as err:
                raise UserError(f"{path}:{lineno}: not a prepared example ({err}); "
                                 "rerun `dvc repro prepare`") from err
            if "text_pair" in row:
                pairs.append(str(row["text_pair"]))
    if pairs and len(pairs) != len(texts):
        raise UserError(f"{path}: some lines have a text_pair and some do not")
    return Split(texts, labels, pairs or None)


def write_labels(path: str | Path, names: list[str], pair: bool) -> None:
    """Write ``labels.json``: the class names (index = class id) and whether inputs are pairs."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"names": list(names), "pair": bool(pair)}, indent=2) + "\n")


def read_labels(path: str | Path) -> list[str]:
    """The class names of ``labels.json`` (index = class id)."""
    return _read_labels_file(path)["names"]


def _read_labels_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path} not found: run `dvc repro prepare` (it writes the label names)")
    return json.loads(path.read_text(encoding="utf-8"))


def load_prepared(folder: str | Path) -> tuple[dict[str, Split], list[str]]:
    """All four prepared splits of ``folder`` and the label names.

    An empty split of a pair task gets ``pairs=[]`` so that it concatenates with the others.
    """
    folder = Path(folder)
    meta = _read_labels_file(folder / LABELS_FILE)
    splits = {name: read_split(folder / f"{name}.jsonl") for name in PREPARED}
    if meta.get("pair"):
        for split in splits.values():
            if split.pairs is None and not len(split):
                split.pairs = []
    return splits, list(meta["names"])


def class_counts(split: Split, n_classes: int) -> list[int]:
    """Examples per class id ``0..n_classes-1`` (unlabelled ``-1`` examples are ignored)."""
    counts = [0] * n_classes
    for y in split.labels:
        if y >= n_classes or y < -1:
            raise ValueError(f"label {y} outside 0..{n_classes - 1}")
        if y >= 0:
            counts[y] += 1
    return counts


# --------------------------------------------------------------------------- tokenisation


def model_inputs(tokenizer, pair: bool) -> list[str]:
    """Input names the models get: ids and mask, plus ``token_type_ids`` for pairs when the
    tokenizer makes them (BERT does, RoBERTa and DistilBERT do not)."""
    names = ["input_ids", "attention_mask"]
    if pair and "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")
    return names


def encode(
    tokenizer,
    texts: list[str],
    pairs: list[str] | None,
    max_length: int,
    padding: bool | str = True,
    return_tensors: str | None = "pt",
) -> dict[str, Any]:
    """Tokenise texts (and their second sentences): THE path for every model input.

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: first sentences.
        pairs: second sentences (same length as ``texts``) or None.
        max_length: tokens per example after truncation (both sentences of a pair together;
            the longer one is cut first).
        padding: pad to the longest example of this call (dynamic padding); ``False``: no
            padding; ``"max_length"``: pad every example to ``max_length``.
        return_tensors: ``"pt"``, ``"np"`` (int64 arrays, for ONNX Runtime) or None (lists).

    Returns:
        A plain dict with exactly the keys of :func:`model_inputs`.
    """
    pair = pairs is not None
    keys = model_inputs(tokenizer, pair)
    enc = tokenizer(
        texts,
        pairs,
        truncation="longest_first" if pair else True,
        max_length=max_length,
        padding=padding,
        return_tensors=return_tensors,
        return_token_type_ids="token_type_ids" in keys,
    )
    out = {k: enc[k] for k in keys}
    if return_tensors == "np":
        out = {k: v.astype("int64", copy=False) for k, v in out.items()}
    return out


def batches(
    split: Split,
    tokenizer,
    batch_size: int,
    max_length: int,
    shuffle: bool = False,
    seed: int = 0,
    sort_by_length: bool = False,
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]]:
    """Yield ``(encoded inputs, labels, indices)`` with dynamic padding, through :func:`encode`.

    ``sort_by_length`` groups similar lengths (characters of text plus pair) so little compute
    goes to padding: fully sorted without ``shuffle``; with it, sorted within random chunks of
    50 batches and the batches shuffled (``group_by_length`` of transformers). ``indices`` map
    each row back to its position in ``split``.
    """
    import torch

    order = list(range(len(split)))
    lengths = [len(t) + (len(split.pairs[i]) if split.pairs is not None else 0)
               for i, t in enumerate(split.texts)]
    if shuffle:
        rng = random.Random(seed)
        rng.shuffle(order)
        if sort_by_length:
            order = _group_by_length(order, lengths, batch_size, rng)
    elif sort_by_length:
        order.sort(key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        pairs = None if split.pairs is None else [split.pairs[i] for i in idx]
        enc = encode(tokenizer, [split.texts[i] for i in idx], pairs, max_length)
        yield enc, torch.tensor([split.labels[i] for i in idx]), idx


def _group_by_length(
    order: list[int], lengths: list[int], batch_size: int, rng: random.Random
) -> list[int]:
    """Sort shuffled indices by length inside chunks of 50 batches, then shuffle batches."""
    chunk = 50 * batch_size
    grouped: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        grouped += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(grouped)
    return [i for b in grouped for i in b]
