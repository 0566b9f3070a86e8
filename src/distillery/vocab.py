"""Vocabulary pruning: keep only the word-embedding rows that the task's text uses.

A small student spends most of its parameters on the word-embedding table of its tokenizer
(30,522 x hidden for BERT), yet a single task uses a small part of that vocabulary. Here the
table is cut down to the rows of the ids that occur in the training text (plus the special
tokens), and a ``remap`` table inside the model turns each original id into its new row:

1. :func:`used_token_ids` tokenises the training text through :func:`distillery.data.encode`
   (the one tokenisation path, so truncation and sentence pairs are as in training);
2. :func:`prune_vocab` swaps the model's input word embeddings for a
   :class:`RemappedEmbedding` of those rows, in place.

The tokenizer is NOT changed: the model still takes the original tokenizer's ids, and an ONNX
export of it stays self-contained (a gather on the remap table, ``GatherND`` with the dynamo
exporter, then ``Gather`` on the smaller table). Ids that were not kept (tokens never seen in
the training text) are read as the tokenizer's unknown token (``[UNK]`` for BERT).

ONNX Runtime's ``EmbedLayerNormalization`` fusion: the dynamo export fuses neither it nor
``Attention``, pruned or not (only ``SkipLayerNormalization`` and ``BiasGelu``), so pruning
costs no fusion there. A TorchScript (``dynamo=False``) export does fuse it, and loses it
after pruning, because the fuser wants ``Shape(input_ids)`` on the position path and the ids
of the word ``Gather`` to be the same tensor; pointing those ``Shape`` nodes at the remapped
ids restores it.

A pruned model is meant for export; ``save_pretrained`` / ``from_pretrained`` of its class would
not know the new module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery.data import Split, encode

logger = logging.getLogger(__name__)

__all__ = ["RemappedEmbedding", "prune_vocab", "used_token_ids"]


def used_token_ids(
    tokenizer,
    split: Split | Sequence[str],
    max_length: int,
    batch_size: int = 1024,
) -> np.ndarray:
    """Sorted unique token ids of the tokenised text, plus every special token id.

    Args:
        tokenizer: the Hugging Face tokenizer the model is trained and served with.
        split: a :class:`~distillery.data.Split` (its sentence pairs are tokenised as pairs)
            or plain texts.
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


class RemappedEmbedding(torch.nn.Module):
    """A word-embedding table of the kept rows only, addressed by the original token ids.

    ``forward(input_ids) = embedding(remap[input_ids])``: ``remap`` (an int64 buffer with one
    entry per original id) gives each kept id its new row. **Ids that were not kept are read as
    the unknown token**: they map to the row of ``unk_id``, so a token never seen in the
    training text gives exactly what ``[UNK]`` gave the original model.

    Args:
        embedding: the original table (``num_embeddings`` = original vocabulary size).
        keep_ids: original ids to keep (any order; duplicates are ignored).
        unk_id: the tokenizer's unknown-token id; must be among ``keep_ids``.

    Raises:
        ValueError: ``keep_ids`` is empty, holds ids outside the vocabulary, or lacks ``unk_id``.
    """

    def __init__(self, embedding: torch.nn.Embedding, keep_ids: Sequence[int] | np.ndarray,
                 unk_id: int) -> None:
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
        remap = torch.full((vocab,), int(rows[hit][0]), dtype=torch.long)  # (V,)
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


def prune_vocab(model, keep_ids: Sequence[int] | np.ndarray, unk_id: int) -> dict[str, int]:
    """Replace the input word embeddings of ``model`` by a :class:`RemappedEmbedding`, in place.

    Works on any Hugging Face model with ``get_input_embeddings`` / ``set_input_embeddings``
    (BERT, RoBERTa, ELECTRA, DistilBERT, DeBERTa-v2...). Position and token-type embeddings,
    ELECTRA's ``embeddings_project`` and the config are left alone; ``config.vocab_size`` stays
    the tokenizer's size because the model still takes the tokenizer's ids.

    Args:
        model: the classifier (its input embeddings must be a plain ``nn.Embedding``).
        keep_ids: original ids to keep, e.g. from :func:`used_token_ids`.
        unk_id: the tokenizer's ``unk_token_id``; ids not kept are read as this token.

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
    new = RemappedEmbedding(old, keep_ids, unk_id)
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
