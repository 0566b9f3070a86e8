"""Latency of a candidate as the pipeline ships it: exported to ONNX, quantised with the
export stage's int8 recipe, served end to end (``tokenizers`` + ONNX Runtime, text in, label
out, batch 1) exactly as stage ``benchmark`` times its files, and timed in interleaved rounds
beside the reference model (the model candidates are built from, usually the teacher) in the
same runtime and precision, so the speed-up it reports is the benchmark's
``speedup_same_runtime`` before pruning and vocabulary pruning (which only add to it).

Latency depends on the architecture, not on the weights: the reference is exported once per
process, and each candidate's file lives only while it is timed.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillery.data.prepared import Split, model_inputs

logger = logging.getLogger(__name__)


@dataclass
class ExportLatency:
    """Callable: ``model -> {"latency_ms", "reference_latency_ms", "speedup"}`` (medians of
    per-round medians; ``speedup`` is the reference's over the candidate's)."""

    reference: Any
    """The torch model the speed-up is measured against (exported once, lazily)."""
    tokenizer: Any
    tokenizer_dir: str
    """Folder holding the ``tokenizer.json`` the Space and the benchmark serve with."""
    texts: Split
    """Batch-1 inputs (cycled): a few eval sentences."""
    max_length: int
    recipe: str = "fused_dynamic"
    """``export.int8_recipe``."""
    opset: int = 18
    threads: int = 0
    """Intra-op threads (``benchmark.threads``)."""
    rounds: int = 5
    repeats: int = 100
    """Timed calls per model over all rounds."""
    _workdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    _reference: Any = field(default=None, repr=False)

    def _runner(self, model, name: str):
        """Export ``model`` to int8 ONNX under the work folder; return its end-to-end runner."""
        from distillery.export import onnx_export, quantize
        from distillery.export.variants import attention_shape
        from distillery.measure import bench
        from distillery.measure.benchmark import onnx_e2e

        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="nas-latency-")
        folder = Path(self._workdir.name)
        inputs = model_inputs(self.tokenizer, self.texts.pairs is not None)
        fp32, int8 = folder / f"{name}.onnx", folder / f"{name}_int8.onnx"
        onnx_export.export(model, fp32, self.opset, inputs)
        heads, width = (0, 0) if self.recipe == "dynamic" else attention_shape(model)
        quantize.apply(self.recipe, fp32, int8, model_type=model.config.model_type,
                       num_heads=heads, hidden_size=width)
        fp32.unlink()
        session = bench.ort_session(str(int8), "cpu", self.threads, spinning=False)
        meta = {"inputs": json.dumps(inputs)}
        return onnx_e2e(session, self.tokenizer_dir, self.tokenizer, meta, self.max_length)

    def __call__(self, model) -> dict[str, float]:
        from distillery.measure import bench
        from distillery.measure.benchmark import texts

        if self._reference is None:
            self._reference = self._runner(self.reference, "reference")
        candidate = self._runner(model, "candidate")
        feeds = texts(self.texts, len(self.texts))
        timing = bench.measure_interleaved(
            {"reference": self._reference, "candidate": candidate}, feeds, None,
            warmup=5, repeats=self.repeats, throughput_batches=1, rounds=self.rounds)
        (Path(self._workdir.name) / "candidate_int8.onnx").unlink(missing_ok=True)
        ref, cand = timing["reference"].latency_ms_p50, timing["candidate"].latency_ms_p50
        return {"latency_ms": cand, "reference_latency_ms": ref, "speedup": ref / cand}
