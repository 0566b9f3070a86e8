"""Distillery: a cached, reproducible model-compression study (NAS, HPO, KD, pruning, ONNX)."""

from __future__ import annotations

__version__ = "0.1.0"
