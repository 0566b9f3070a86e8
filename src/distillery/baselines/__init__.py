"""Cheap baselines a practitioner tries before a transformer (stage ``baselines``), benchmarked
as variants beside the students: one module per kind, registered in :data:`KINDS`.

A baseline takes raw text and answers with logits, so its latency is end to end by
construction. It is saved without pickle (vocabularies as JSON, arrays as safetensors).
"""

from __future__ import annotations

from distillery.baselines import tfidf
from distillery.baselines.base import KINDS, Baseline, load

KINDS.register(tfidf.KIND)(tfidf)

__all__ = ["KINDS", "Baseline", "load", "tfidf"]
