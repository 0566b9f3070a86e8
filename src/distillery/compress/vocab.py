"""Vocabulary pruning: keep only the word-embedding rows that the task's text uses.

A small student spends most of its parameters on the word-embedding table of its tokenizer
(30,522 x hidden for BERT), yet a single task uses a small part of that vocabulary. Here the
table is cut down to the rows of the ids that occur in the training text (plus the special
tokens), and a ``remap`` table inside the model turns each original id into its new row:

1. :func:`used_token_ids` tokenises the training text through
   :func:`distillery.data.prepared.encode` (the one tokenisation path, so truncation and sentence
   pairs are as in training), and :func:`frequent_ids` adds the vocabulary's commonest tokens the
   text lacks (a row budget);
2. :func:`prune_vocab` swaps the model's input word embeddings for a
   :class:`RemappedEmbedding` of those rows, in place.

The tokenizer is NOT changed: the model still takes the original tokenizer's ids, and an ONNX
export of it stays self-contained (one ``Gather`` on the remap table, then the ``Gather`` of the
smaller table). An id that was not kept (a token never seen in the training text) reads either
the unknown token (``unseen="unk"``) or the kept token whose original embedding is the most
similar (``unseen="nearest"``, the default of ``export.vocab_unseen``: measured on SST-2, the
int8 pruned student scored 0.8108 with it against 0.8073 with ``[UNK]``).

ONNX Runtime's ``EmbedLayerNormalization`` fusion needs ``Shape(input_ids)`` on the position
path and the ids of the word ``Gather`` to be the same tensor, which the remap breaks: the
``fused`` recipes of :mod:`distillery.export.quantize` expand the lookup for the optimizer and put
the kept rows and the remap back into the fused op afterwards
(:func:`distillery.export.quantize.graph.unfold_vocab_remap`), so the pruned file is fused like the
unpruned one and stays small.

A pruned model is meant for export; ``save_pretrained`` / ``from_pretrained`` of its class would
not know the new module.
"""

from __future__ import annotations

import logging
import re
import typing
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery.data.prepared import Split, encode

logger = logging.getLogger(__name__)

__all__ = ["UNSEEN", "RemappedEmbedding", "frequent_ids", "nearest_rows", "prune_vocab",
           "used_token_ids"]

Unseen = Literal["unk", "nearest"]
UNSEEN: tuple[str, ...] = typing.get_args(Unseen)
"""What an id that was not kept reads (see :class:`RemappedEmbedding`)."""


def used_token_ids(
    tokenizer,
    split: Split | Sequence[str],
    max_length: int,
    batch_size: int = 1024,
) -> np.ndarray:
    """Sorted unique token ids of the tokenised text, plus every special token id.

    Args:
        tokenizer: the Hugging Face tokenizer the model is trained and served with.
        split: a :class:`~distillery.data.prepared.Split` (its sentence pairs are tokenised as
            pairs) or plain texts.
        max_length: tokens per example after truncation, as in training (tokens cut off
            there never reach the model).
        batch_size: texts per tokenizer call.

    Returns:
        An int64 array of ids, sorted, with the ids of ``tokenizer.all_special_ids``
        (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``...) always included.
    """
    if not isinstance(split, Split):
        split = Split(list(split), [-1] * len(split))
    seen = np.zeros(len(tokenizer), dtype=bool)
    seen[list(tokenizer.all_special_ids)] = True
    starts = range(0, len(split), batch_size)
    for start in tqdm(starts, desc="token ids", unit="batch", disable=len(starts) < 10):
        part = split.subset(range(start, min(start + batch_size, len(split))))
        enc = encode(tokenizer, part.texts, part.pairs, max_length,
                     padding=False, return_tensors=None)
        for ids in enc["input_ids"]:
            seen[ids] = True
    return np.flatnonzero(seen).astype(np.int64)


RESERVED = re.compile(r"^(\[unused\d+\]|<unused\d+>|\[PAD\d*\])$")
"""Placeholder tokens a vocabulary reserves (BERT's ``[unused0]``...): never produced by
tokenising text, so never worth a row."""


def frequent_ids(tokenizer, n: int, exclude: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    """The ``n`` lowest token ids not in ``exclude``, skipping special and reserved tokens.

    WordPiece, BPE and SentencePiece vocabularies list their tokens roughly by frequency in
    the tokenizer's training corpus (BERT's ``vocab.txt`` by count, BPE in merge order,
    SentencePiece by score), so low ids are the common tokens of the language. Kept beside
    the task's own tokens, they spare the commonest words of unseen text the ``unseen``
    fallback (on SST-2, 45% of dev sentences hold a token absent from train + transfer).

    Returns:
        A sorted int64 array of at most ``n`` ids (fewer when the vocabulary runs out).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    skip = set(np.asarray(exclude, dtype=np.int64).tolist()) | set(tokenizer.all_special_ids)
    out: list[int] = []
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    for i, token in enumerate(tokens):
        if len(out) == n:
            break
        if i not in skip and token is not None and not RESERVED.match(token):
            out.append(i)
    return np.asarray(out, dtype=np.int64)


class RemappedEmbedding(torch.nn.Module):
    """A word-embedding table of the kept rows only, addressed by the original token ids.

    ``forward(input_ids) = embedding(remap[input_ids])``: ``remap`` (an int64 buffer with one
    entry per original id) gives each kept id its new row. What an id that was **not** kept
    reads is ``unseen``:

    - ``"unk"``: the row of ``unk_id``, so a token never seen in the training text gives
      exactly what ``[UNK]`` gave the original model;
    - ``"nearest"``: the kept row closest to its own original row (cosine similarity of the
      original embeddings; special tokens excluded), so an unseen word reads as the most
      similar word the task's text has, at no cost at run time (the same one Gather).

    Args:
        embedding: the original table (``num_embeddings`` = original vocabulary size).
        keep_ids: original ids to keep (any order; duplicates are ignored).
        unk_id: the tokenizer's unknown-token id; must be among ``keep_ids``.
        unseen: ``"unk"`` or ``"nearest"``, see above.
        special_ids: ids ``"nearest"`` never maps to (the tokenizer's special tokens).

    Raises:
        ValueError: ``keep_ids`` is empty, holds ids outside the vocabulary, or lacks
            ``unk_id``; ``unseen`` is unknown.
    """

    def __init__(self, embedding: torch.nn.Embedding, keep_ids: Sequence[int] | np.ndarray,
                 unk_id: int, unseen: Unseen = "unk",
                 special_ids: Sequence[int] = ()) -> None:
        super().__init__()
        vocab = embedding.num_embeddings
        keep = torch.as_tensor(np.unique(np.asarray(keep_ids, dtype=np.int64)))
        if not len(keep) or keep[0] < 0 or keep[-1] >= vocab:
            got = f" in {int(keep[0])}..{int(keep[-1])}" if len(keep) else ""
            raise ValueError(f"keep_ids must be non-empty ids in 0..{vocab - 1}, "
                             f"got {len(keep)} ids{got}")
        rows = torch.arange(len(keep))
        hit = keep == unk_id
        if not hit.any():
            raise ValueError(f"unk_id {unk_id} is not among keep_ids: unseen tokens could not be "
                             "read as the unknown token (used_token_ids keeps every special id)")
        if unseen not in UNSEEN:
            raise ValueError(f"unseen must be one of {', '.join(UNSEEN)}, got {unseen!r}")
        remap = torch.full((vocab,), int(rows[hit][0]), dtype=torch.long)  # (V,)
        if unseen == "nearest":
            remap = nearest_rows(embedding.weight.detach(), keep, special_ids)
        remap[keep] = rows
        self.register_buffer("remap", remap)
        pad = embedding.padding_idx
        self.embedding = torch.nn.Embedding(
            len(keep), embedding.embedding_dim,
            padding_idx=int(remap[pad]) if pad is not None and bool((keep == pad).any()) else None,
            dtype=embedding.weight.dtype, device=embedding.weight.device)
        with torch.no_grad():
            self.embedding.weight.copy_(embedding.weight[keep.to(embedding.weight.device)])
        self.embedding.weight.requires_grad_(embedding.weight.requires_grad)

    @property
    def num_embeddings(self) -> int:
        """Size of the original vocabulary (the ids this module accepts)."""
        return self.remap.numel()

    @property
    def embedding_dim(self) -> int:
        return self.embedding.embedding_dim

    @property
    def weight(self) -> torch.nn.Parameter:
        """The kept rows ``(kept, D)`` (so that code freezing ``.weight`` keeps working)."""
        return self.embedding.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # index_select exports as one ONNX Gather (indexing would give a slower GatherND)
        rows = self.remap.index_select(0, input_ids.reshape(-1)).view_as(input_ids)
        return self.embedding(rows)  # (B, T) -> (B, T, D)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings} ids -> {self.embedding.num_embeddings} rows"


def nearest_rows(weight: torch.Tensor, keep: torch.Tensor, special_ids: Sequence[int] = (),
                 chunk: int = 2048) -> torch.Tensor:
    """For every original id, the index in ``keep`` of the kept row most similar to its own
    (cosine similarity of the rows of ``weight``, ``(V, D)``); special ids are never chosen.

    Returns:
        ``(V,)`` int64 row indices (a kept id maps to itself).
    """
    kept = torch.nn.functional.normalize(weight[keep].float(), dim=1)  # (K, D)
    banned = torch.isin(keep, torch.as_tensor(list(special_ids), dtype=keep.dtype))
    out = torch.empty(weight.shape[0], dtype=torch.long)
    for start in range(0, weight.shape[0], chunk):  # (chunk, K) similarities at a time
        part = torch.nn.functional.normalize(weight[start:start + chunk].float(), dim=1)
        sims = part @ kept.T
        sims[:, banned] = -2.0
        out[start:start + chunk] = sims.argmax(dim=1)
    return out


def prune_vocab(model, keep_ids: Sequence[int] | np.ndarray, unk_id: int,
                unseen: Unseen = "unk", special_ids: Sequence[int] = ()) -> dict[str, int]:
    """Replace the input word embeddings of ``model`` by a :class:`RemappedEmbedding`, in place.

    Works on any Hugging Face model with ``get_input_embeddings`` / ``set_input_embeddings``
    (BERT, RoBERTa, ELECTRA, DistilBERT, DeBERTa-v2...). Position and token-type embeddings,
    ELECTRA's ``embeddings_project`` and the config are left alone; ``config.vocab_size`` stays
    the tokenizer's size because the model still takes the tokenizer's ids.

    Args:
        model: the classifier (its input embeddings must be a plain ``nn.Embedding``).
        keep_ids: original ids to keep, e.g. from :func:`used_token_ids`.
        unk_id: the tokenizer's ``unk_token_id``.
        unseen: what an id that was not kept reads: ``"unk"`` (the unknown token) or
            ``"nearest"`` (the most similar kept token); see :class:`RemappedEmbedding`.
        special_ids: the tokenizer's special ids (never a ``"nearest"`` target).

    Returns:
        ``vocab_before``, ``vocab_after`` (rows) and ``embedding_params_before``,
        ``embedding_params_after`` (word-embedding parameters).

    Raises:
        ValueError: the input embeddings are not an ``nn.Embedding`` (e.g. already pruned),
            or see :class:`RemappedEmbedding`.
    """
    old = model.get_input_embeddings()
    if type(old) is not torch.nn.Embedding:
        raise ValueError(f"input embeddings are a {type(old).__name__}, not an nn.Embedding "
                         "(is the vocabulary already pruned?)")
    new = RemappedEmbedding(old, keep_ids, unk_id, unseen, special_ids)
    model.set_input_embeddings(new)
    if model.get_input_embeddings() is not new:
        raise ValueError(f"{type(model).__name__}.set_input_embeddings did not take the new table")
    facts = {
        "vocab_before": old.num_embeddings,
        "vocab_after": new.embedding.num_embeddings,
        "embedding_params_before": old.weight.numel(),
        "embedding_params_after": new.embedding.weight.numel(),
    }
    logger.info("vocabulary pruned: %(vocab_before)d -> %(vocab_after)d rows, word-embedding "
                "params %(embedding_params_before)d -> %(embedding_params_after)d", facts)
    return facts
