"""SST-2 data: fetching the raw GLUE files, stratified splits, tokenised batches.

Raw files are the original GLUE ``SST-2/{train,dev}.tsv`` (``sentence\\tlabel``, no quoting).
They come from a local mirror folder when present, else from the Hugging Face Hub.
"""

from __future__ import annotations

import csv
import logging
import random
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from distillery.io import atomic_path

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev")
HEADER = ["sentence", "label"]


@dataclass
class Split:
    """Sentences with labels (``-1`` marks an unlabelled sentence)."""

    sentences: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.sentences)

    def subset(self, idx: Sequence[int]) -> Split:
        return Split([self.sentences[i] for i in idx], [self.labels[i] for i in idx])


def read_tsv(path: str | Path) -> Split:
    """Read a GLUE-style ``sentence\\tlabel`` file (``csv.QUOTE_NONE``).

    Raises:
        FileNotFoundError / ValueError: with how to fix a missing or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `dvc repro fetch` (it copies SST-2 from fetch.mirror "
            "or downloads it from the Hub)"
        )
    sentences, labels = [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != HEADER:
            raise ValueError(
                f"{path}: header is {header!r}, expected {HEADER!r} (GLUE SST-2 format)"
            )
        for lineno, row in enumerate(reader, start=2):
            if len(row) != 2 or row[1].strip() not in {"0", "1", "-1"}:
                raise ValueError(
                    f"{path}:{lineno}: expected 'sentence<TAB>label' with label 0 or 1, got {row!r}"
                )
            sentences.append(row[0].strip())
            labels.append(int(row[1]))
    if not sentences:
        raise ValueError(f"{path}: no data rows")
    return Split(sentences, labels)


def write_tsv(path: str | Path, split: Split) -> None:
    """Write ``split`` in the same GLUE format, atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        f.write("\t".join(HEADER) + "\n")
        for s, y in zip(split.sentences, split.labels, strict=True):
            if "\t" in s or "\n" in s or "\r" in s:
                raise ValueError(f"sentence contains a tab or newline: {s!r}")
            f.write(f"{s}\t{y}\n")  # no quoting, as in GLUE


def fetch_sst2(out_dir: str | Path, mirror: str | Path, hub_dataset: str) -> str:
    """Materialise ``train.tsv`` and ``dev.tsv`` in ``out_dir``.

    Uses ``mirror/sst2/`` when it holds both files, otherwise downloads ``hub_dataset``
    (its ``train`` and ``validation`` splits are GLUE train and dev) with ``datasets``.

    Returns:
        Where the data came from, for the stage's metrics.
    """
    out_dir = Path(out_dir)
    local = Path(mirror) / "sst2"
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if all((local / f"{s}.tsv").is_file() for s in SPLITS):
            for s in SPLITS:
                shutil.copyfile(local / f"{s}.tsv", tmp / f"{s}.tsv")
                read_tsv(tmp / f"{s}.tsv")  # fail early on a malformed mirror
            logger.info("copied SST-2 from local mirror %s", local)
            return f"mirror:{local}"
        logger.info("no SST-2 in %s; downloading %s from the Hugging Face Hub", local, hub_dataset)
        import datasets  # heavy: only when needed

        try:
            ds = datasets.load_dataset(hub_dataset)
        except Exception as err:
            raise RuntimeError(
                f"SST-2 is not in the local mirror ({local}/train.tsv, dev.tsv) and downloading "
                f"{hub_dataset!r} from the Hugging Face Hub failed ({err}). Point fetch.mirror "
                "at a folder holding sst2/train.tsv and sst2/dev.tsv, or go online."
            ) from err
        for s, hub_split in (("train", "train"), ("dev", "validation")):
            rows = ds[hub_split]
            write_tsv(tmp / f"{s}.tsv", Split(list(rows["sentence"]), list(rows["label"])))
        return f"hub:{hub_dataset}"


def stratified_indices(labels: Sequence[int], n: int, rng: random.Random) -> list[int]:
    """Pick ``n`` indices keeping the label proportions of ``labels``."""
    if n > len(labels):
        raise ValueError(f"asked for {n} examples but only {len(labels)} are available")
    by_label: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(y, []).append(i)
    chosen: list[int] = []
    keys = sorted(by_label)
    for k, y in enumerate(keys):
        pool = by_label[y]
        rng.shuffle(pool)
        take = n - len(chosen) if k == len(keys) - 1 else round(n * len(pool) / len(labels))
        chosen.extend(pool[:take])
    rng.shuffle(chosen)
    return chosen


def make_splits(
    train: Split, n_train: int, n_val: int, n_transfer: int, seed: int
) -> dict[str, Split]:
    """Carve disjoint train / val / transfer splits out of GLUE train.

    Duplicated sentences are dropped first so no sentence lands in two splits. The transfer
    split keeps sentences only (labels set to -1): the teacher labels them for distillation.
    """
    seen: set[str] = set()
    unique = [i for i, s in enumerate(train.sentences) if not (s in seen or seen.add(s))]
    pool = train.subset(unique)
    rng = random.Random(seed)
    picked = stratified_indices(pool.labels, n_train + n_val, rng)
    val_idx = set(stratified_indices([pool.labels[i] for i in picked], n_val, rng))
    tr = [i for k, i in enumerate(picked) if k not in val_idx]
    va = [i for k, i in enumerate(picked) if k in val_idx]
    used = set(picked)
    rest = [i for i in range(len(pool)) if i not in used]
    rng.shuffle(rest)
    if n_transfer > len(rest):
        raise ValueError(f"prepare.n_transfer={n_transfer} but only {len(rest)} sentences remain")
    transfer = pool.subset(rest[:n_transfer])
    return {
        "train": pool.subset(tr),
        "val": pool.subset(va),
        "transfer": Split(transfer.sentences, [-1] * len(transfer)),
    }


def label_balance(split: Split) -> float:
    """Fraction of positive labels among labelled examples."""
    labelled = [y for y in split.labels if y >= 0]
    return sum(labelled) / len(labelled) if labelled else float("nan")


def batches(
    split: Split,
    tokenizer,
    batch_size: int,
    max_length: int,
    shuffle: bool = False,
    seed: int = 0,
    sort_by_length: bool = False,
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor, list[int]]]:
    """Yield ``(encoded inputs, labels, indices)`` with dynamic padding.

    ``sort_by_length`` groups similar lengths so little compute goes to padding: fully sorted
    without ``shuffle``; with it, sorted within random chunks of 50 batches and the batches
    shuffled (``group_by_length`` of transformers). ``indices`` map each row back to its
    position in ``split``.
    """
    order = list(range(len(split)))
    if shuffle:
        rng = random.Random(seed)
        rng.shuffle(order)
        if sort_by_length:
            order = _group_by_length(order, split.sentences, batch_size, rng)
    elif sort_by_length:
        order.sort(key=lambda i: len(split.sentences[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [split.sentences[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        yield dict(enc), torch.tensor([split.labels[i] for i in idx]), idx


def _group_by_length(
    order: list[int], sentences: list[str], batch_size: int, rng: random.Random
) -> list[int]:
    """Sort shuffled indices by length inside chunks of 50 batches, then shuffle batches."""
    chunk = 50 * batch_size
    grouped: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(sentences[i]))
        grouped += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(grouped)
    return [i for b in grouped for i in b]
