"""The ``export:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from distillery.config.base import in_range, positive


@dataclass
class ExportParams:
    """ONNX export, int8 quantisation and validation against PyTorch."""

    opset: int = 18
    """ONNX opset of the exported files (14-23)."""
    exporter: Literal["torchscript", "dynamo"] = "torchscript"
    """``torch.onnx`` exporter: ``torchscript`` (fast; ONNX Runtime's optimizer also fuses its
    embeddings) or ``dynamo`` (``torch.export``)."""
    fp32_max_abs_diff: float = 1e-3
    """Largest |logit difference| allowed between an fp32 ONNX model and its torch source."""
    int8_max_rel_diff: float = 0.4
    """Largest |logit difference| allowed for an int8 (or fp16) file against its fp32 torch
    source, as a fraction of the range of the torch logits on eval (max - min over examples and
    classes): one gate for 2-class and 20-class tasks, whose logits (and int8 noise) differ in
    scale. SST-2's int8 teacher: 1.34 of a 4.92 range (0.27)."""
    fp32_min_agreement: float = 0.99
    """Smallest fraction of eval examples whose argmax must agree (fp32 vs torch)."""
    int8_min_agreement: float = 0.9
    """Same for the int8 model against the fp32 torch student."""
    batch_size: int = 64
    """Examples per batch when validating files against torch."""
    int8_recipe: str = "fused_dynamic"
    """Int8 recipe of :mod:`distillery.export.quantize`: ``dynamic``, ``dynamic_per_channel``,
    ``fused_dynamic`` (ORT transformer fusions, then dynamic int8) or ``static``
    (calibrated QDQ)."""
    static_calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    """How ``static`` sets activation ranges: observed min/max, KL-optimal (entropy) or the
    99.999th percentile."""
    calibration_examples: int = 200
    """Train sentences fed through the model to calibrate ``static``."""
    vocab_unseen: Literal["unk", "nearest"] = "nearest"
    """What the vocabulary-pruned student reads for a token absent from the training text:
    ``unk`` (the unknown token) or ``nearest`` (the kept token with the most similar original
    embedding; same size and speed)."""
    vocab_extra: int = 4000
    """Rows kept beside the training text's tokens: the vocabulary's commonest tokens it
    lacks (lowest ids, :func:`distillery.compress.vocab.frequent_ids`); 0 = the training text's
    only. Each row costs ``hidden_size`` bytes in int8 (4,000 x 384 = 1.5 MB)."""

    def check(self) -> list[str]:
        out = positive(self, "fp32_max_abs_diff", "int8_max_rel_diff", "batch_size",
                        "calibration_examples")
        if self.vocab_extra < 0:
            out.append(f"vocab_extra: got {self.vocab_extra}, expected >= 0")
        from distillery.export.quantize import INT8_RECIPES  # noqa: PLC0415 (onnxruntime, only here)

        if self.int8_recipe not in INT8_RECIPES:
            out.append(f"int8_recipe: got {self.int8_recipe!r}, expected one of "
                       + ", ".join(INT8_RECIPES))
        out += in_range("opset", self.opset, 14, 23)
        out += in_range("fp32_min_agreement", self.fp32_min_agreement, 0.0, 1.0)
        return out + in_range("int8_min_agreement", self.int8_min_agreement, 0.0, 1.0)
