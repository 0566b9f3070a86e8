"""Stratified, seeded subsampling: the train / val / transfer / eval splits of stage ``prepare``.

No text (or text pair) lands in two splits: train is deduplicated first and examples that
also appear in the evaluation split are dropped from the training pool. The validation split,
which selects architectures and hyperparameters, is also kept apart from what is trained on at
the phrase level: no validation text is contained in a train text or contains one (SST-2's
train split holds the sub-phrases of each sentence), and transfer texts related to a
validation text that way are left out (see :func:`related`). Sentence-pair tasks are checked
for exact duplicates only: the same premise recurs with other hypotheses by design.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from distillery.core.io import UserError
from distillery.data.prepared import Split

logger = logging.getLogger(__name__)


def stratified_indices(labels: Sequence[int], n: int, rng: random.Random) -> list[int]:
    """Pick ``n`` indices of ``labels`` keeping the class proportions.

    Allocation: each class gets its quota ``n * size / len(labels)`` rounded down, and the
    examples left go to the largest remainders (largest-remainder / Hamilton method; ties by
    class order), so counts never go negative and sum exactly to ``n``. When ``n`` is at least
    the number of classes, every class keeps at least one example: a class rounded to zero takes
    one from the class most above its quota. A class with fewer examples than its allocation
    gives all it has and the shortfall is shared among the other classes in proportion to their
    sizes (again by largest remainders). Within each class the examples are drawn at random
    with ``rng``, and the result is shuffled.

    Raises:
        ValueError: ``n`` is negative or larger than ``len(labels)``.
    """
    if not 0 <= n <= len(labels):
        raise ValueError(f"asked for {n} examples but only {len(labels)} are available")
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    keys = sorted(by_class)
    sizes = [len(by_class[y]) for y in keys]
    chosen: list[int] = []
    for y, take in zip(keys, allocate(n, sizes), strict=True):
        pool = by_class[y]
        rng.shuffle(pool)
        chosen.extend(pool[:take])
    rng.shuffle(chosen)
    return chosen


def allocate(n: int, sizes: Sequence[int], weights: Sequence[float] | None = None) -> list[int]:
    """Split ``n`` into per-class counts ``<= sizes``, proportional to ``weights`` (default:
    ``sizes``), with at least one per class when ``n >= len(sizes)``. See
    :func:`stratified_indices` for the rules."""
    if not 0 <= n <= sum(sizes):
        raise ValueError(f"asked for {n} examples but only {sum(sizes)} are available")
    weights = list(sizes if weights is None else weights)
    counts = _largest_remainder(n, weights)
    if n >= len(sizes):
        quota = [n * w / (sum(weights) or 1.0) for w in weights]
        for c in [c for c, k in enumerate(counts) if k == 0 and sizes[c] > 0]:
            donor = max((d for d in range(len(counts)) if counts[d] > 1),
                        key=lambda d: counts[d] - quota[d])
            counts[donor] -= 1
            counts[c] = 1
    while any(k > s for k, s in zip(counts, sizes, strict=True)):
        short = sum(max(0, k - s) for k, s in zip(counts, sizes, strict=True))
        counts = [min(k, s) for k, s in zip(counts, sizes, strict=True)]
        spare = [w if k < s else 0.0 for k, s, w in zip(counts, sizes, weights, strict=True)]
        if not any(spare):  # only classes with zero weight have room left
            spare = [1.0 if k < s else 0.0 for k, s in zip(counts, sizes, strict=True)]
        counts = [k + e for k, e in zip(counts, _largest_remainder(short, spare), strict=True)]
    return counts


def _largest_remainder(n: int, weights: Sequence[float]) -> list[int]:
    total = sum(weights)
    if n == 0 or total <= 0:
        return [0] * len(weights)
    quota = [n * w / total for w in weights]
    counts = [int(q) for q in quota]
    by_remainder = sorted(range(len(weights)), key=lambda c: (-(quota[c] - counts[c]), c))
    for c in by_remainder[: n - sum(counts)]:
        counts[c] += 1
    return counts


def make_splits(
    train: Split,
    eval_: Split | None,
    n_train: int | float | str,
    n_val: int,
    n_transfer: int,
    eval_size: int,
    seed: int,
    eval_seed: int | None = None,
) -> tuple[dict[str, Split], dict[str, Any]]:
    """Disjoint ``train`` / ``val`` / ``transfer`` / ``eval`` splits.

    ``n_train`` is a count, or ``"all"`` / a fraction in (0, 1] of the labelled examples left
    once val and transfer are set aside (:func:`_relative_splits`: val is drawn first, and
    pool examples related to a val text are left out of train and transfer).

    Train is deduplicated by (text, pair) and every example also in ``eval_`` is dropped from
    it. Without ``eval_``, a stratified eval split of ``eval_size`` is carved from the pool first
    (seeded by ``eval_seed``, default ``seed``, so the eval set can stay fixed while ``seed``
    varies). Then ``n_train`` and ``n_val`` stratified examples; ``transfer`` is ``n_transfer``
    of the rest with labels ``-1`` (the teacher labels them for distillation).

    Returns:
        The four splits and counts for metrics: ``duplicates_dropped``,
        ``conflicting_duplicates`` (dropped duplicates whose label differs from the kept first
        occurrence's), ``overlap_dropped`` (train examples also in eval), ``eval_carved``,
        ``pool_size``.

    Raises:
        ValueError: the pool is smaller than requested (names the key to lower).
    """
    unique, conflicting = _dedup(train)
    keys = _keys(train)
    info: dict[str, Any] = {"duplicates_dropped": len(train) - len(unique),
                            "conflicting_duplicates": conflicting}
    eval_keys = set() if eval_ is None else set(_keys(eval_))
    kept = [i for i in unique if keys[i] not in eval_keys]
    info["overlap_dropped"] = len(unique) - len(kept)
    pool = train.subset(kept)
    info["eval_carved"] = eval_ is None
    if eval_ is None:
        if eval_size > len(pool):
            raise UserError(f"data.eval_size={eval_size} but train has only {len(pool)} unique "
                             "examples: lower data.eval_size (or give an eval split)")
        picked = stratified_indices(pool.labels, eval_size,
                                    random.Random(seed if eval_seed is None else eval_seed))
        eval_, pool = pool.subset(picked), pool.subset(_rest(len(pool), picked))
        logger.info("carved an eval split of %d examples from train", eval_size)
    info["pool_size"] = len(pool)
    if not isinstance(n_train, int):
        fraction = 1.0 if n_train == "all" else float(n_train)
        return _relative_splits(pool, eval_, fraction, n_val, n_transfer, seed, info)
    if n_train + n_val > len(pool):
        raise UserError(
            f"prepare.n_train + prepare.n_val = {n_train + n_val} but only {len(pool)} labelled "
            "examples are available (after deduplication and setting the eval split aside): "
            "lower prepare.n_train or prepare.n_val")
    rng = random.Random(seed)
    tr = stratified_indices(pool.labels, n_train, rng)
    rest = _rest(len(pool), tr)
    phrases = pool.pairs is None  # pairs: exact duplicates only (premises recur by design)
    near = related([pool.texts[i] for i in rest], [pool.texts[i] for i in tr]) if phrases \
        else [False] * len(rest)
    candidates = [i for i, bad in zip(rest, near, strict=True) if not bad]
    info["val_related_to_train_excluded"] = len(rest) - len(candidates)
    if n_val > len(candidates):
        raise UserError(
            f"prepare.n_val={n_val} but only {len(candidates)} examples are unrelated to the "
            f"{n_train} train texts (neither contains the other): lower prepare.n_val or "
            "prepare.n_train")
    va = [candidates[k] for k in stratified_indices([pool.labels[i] for i in candidates],
                                                    n_val, rng)]
    rest = _rest(len(pool), tr + va)
    near = related([pool.texts[i] for i in rest], [pool.texts[i] for i in va]) if phrases \
        else [False] * len(rest)
    info["transfer_related_to_val_excluded"] = sum(near)
    rest = [i for i, bad in zip(rest, near, strict=True) if not bad]
    if n_transfer > len(rest):
        raise UserError(f"prepare.n_transfer={n_transfer} but only {len(rest)} examples remain "
                         f"after train and val: lower prepare.n_transfer to at most {len(rest)}")
    rng.shuffle(rest)
    transfer = pool.subset(rest[:n_transfer])
    transfer.labels = [-1] * len(transfer)
    splits = {"train": pool.subset(tr), "val": pool.subset(va), "transfer": transfer,
              "eval": eval_}
    return splits, info


def _relative_splits(pool: Split, eval_: Split, fraction: float, n_val: int, n_transfer: int,
                     seed: int, info: dict[str, Any]) -> tuple[dict[str, Split], dict[str, Any]]:
    """Splits when train is a ``fraction`` of what is left: stratified val first, then
    ``n_transfer`` random examples of the rest unrelated to val, then a stratified ``fraction``
    of what remains is train."""
    rng = random.Random(seed)
    if n_val > len(pool):
        raise UserError(f"prepare.n_val={n_val} but only {len(pool)} labelled examples are "
                         "available: lower prepare.n_val")
    va = stratified_indices(pool.labels, n_val, rng)
    rest = _rest(len(pool), va)
    near = related([pool.texts[i] for i in rest], [pool.texts[i] for i in va]) \
        if pool.pairs is None else [False] * len(rest)
    info["val_related_to_train_excluded"] = sum(near)
    info["transfer_related_to_val_excluded"] = 0
    rest = [i for i, bad in zip(rest, near, strict=True) if not bad]
    if n_transfer >= len(rest):
        raise UserError(f"prepare.n_transfer={n_transfer} leaves no labelled example for train "
                         f"({len(rest)} remain after val): lower prepare.n_transfer")
    rng.shuffle(rest)
    transfer, labelled = pool.subset(rest[:n_transfer]), rest[n_transfer:]
    transfer.labels = [-1] * len(transfer)
    take = max(1, round(fraction * len(labelled)))
    tr = [labelled[k] for k in stratified_indices([pool.labels[i] for i in labelled], take, rng)]
    logger.info("train: %d of %d labelled examples left after val and transfer (%s)",
                len(tr), len(labelled), f"{fraction:g}")
    return {"train": pool.subset(tr), "val": pool.subset(va), "transfer": transfer,
            "eval": eval_}, info


def related(candidates: Sequence[str], reference: Sequence[str],
            max_words: int = 64) -> list[bool]:
    """For each candidate, whether it contains a reference text or is contained in one, as a
    contiguous run of words (case and spacing ignored: ``"a gorgeous film"`` and ``"A gorgeous
    film , funny"`` are related; ``"film"`` and ``"films"`` are not).

    Runs of up to ``max_words`` words are compared, so cost stays linear in the data; a longer
    text is only related to another through its runs of that length or less.

    Memory is bounded by the short texts, not by the runs: only texts of at most ``max_words``
    words can be the contained side, so only they are indexed (by first word, word count and
    last word), and each text's runs are made one at a time, only where those three match an
    indexed text. Runs are compared as strings: exact, no hashing, so no collision risk. (A
    4,000-word text once held ~70 MB of run strings; it now holds its word list.)
    """
    short_cands: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        words = c.lower().split()
        if 0 < len(words) <= max_words:
            short_cands.setdefault(" ".join(words), []).append(i)
    inside = [False] * len(candidates)
    starts = _starts(short_cands)
    for t in reference:
        for run in _runs(t.lower().split(), starts):
            for i in short_cands.get(run, ()):
                inside[i] = True
    short_refs = {t for t in map(_norm, reference) if 0 < len(t.split()) <= max_words}
    starts = _starts(short_refs)
    return [inside[i] or any(r in short_refs for r in _runs(c.lower().split(), starts))
            for i, c in enumerate(candidates)]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _starts(texts: Iterable[str]) -> dict[str, dict[int, set[str]]]:
    """First word of each (normalised, non-empty) text -> its word count -> the last words of
    the texts with that first word and count."""
    out: dict[str, dict[int, set[str]]] = {}
    for t in texts:
        words = t.split(" ")
        out.setdefault(words[0], {}).setdefault(len(words), set()).add(words[-1])
    return out


def _runs(words: list[str], starts: dict[str, dict[int, set[str]]]) -> Iterator[str]:
    """Runs of ``words``, one at a time, whose first word, word count and last word are those
    of an indexed text (the only runs that can equal one)."""
    n = len(words)
    for i, w in enumerate(words):
        for k, last in starts.get(w, {}).items():
            if i + k <= n and words[i + k - 1] in last:
                yield " ".join(words[i:i + k])


def _dedup(train: Split) -> tuple[list[int], int]:
    """Indices of the first occurrence of each (text, pair), and how many later occurrences
    carry another label (dropped like the others, with one warning)."""
    first: dict[tuple[str, str | None], int] = {}
    unique, conflicts = [], []
    for i, k in enumerate(_keys(train)):
        j = first.setdefault(k, i)
        if j == i:
            unique.append(i)
        elif train.labels[j] != train.labels[i]:
            conflicts.append((j, i))
    if conflicts:
        j, i = conflicts[0]
        logger.warning(
            "train: %d duplicate example(s) carry another label than their first occurrence "
            "(e.g. %r: class id %d, then %d); the first occurrence is kept. Fix those labels in "
            "the source if the first is not the right one", len(conflicts),
            train.texts[j][:80], train.labels[j], train.labels[i])
    return unique, len(conflicts)


def _keys(split: Split) -> list[tuple[str, str | None]]:
    pairs = split.pairs if split.pairs is not None else [None] * len(split)
    return list(zip(split.texts, pairs, strict=True))


def _rest(n: int, taken: Sequence[int]) -> list[int]:
    used = set(taken)
    return [i for i in range(n) if i not in used]
