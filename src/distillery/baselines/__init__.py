"""Cheap baselines a practitioner tries before a transformer (stage ``baselines``), benchmarked
as variants beside the students: one module per kind, registered in :data:`KINDS`.

Kinds: :mod:`~distillery.baselines.tfidf` (TF-IDF + logistic regression on the gold labels)
and :mod:`~distillery.baselines.static` (model2vec static embeddings of the teacher + a linear
head, trained on the teacher's logits, int8 ONNX). A baseline takes raw text and answers with
logits, so its latency is end to end by construction. Nothing is pickled (JSON, safetensors,
ONNX).
"""

from __future__ import annotations

from distillery.baselines import static, tfidf
from distillery.baselines.base import KINDS, Baseline, Context, load

KINDS.register(tfidf.KIND)(tfidf)
KINDS.register(static.KIND)(static)

__all__ = ["KINDS", "Baseline", "Context", "load", "static", "tfidf"]
