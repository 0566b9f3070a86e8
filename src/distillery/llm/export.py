"""A causal LM as one ONNX decoder with a KV cache.

The graph's inputs are ``input_ids`` ``(B, T)``, ``attention_mask`` ``(B, P + T)``,
``position_ids`` ``(B, T)`` and, per layer, ``past.<i>.key`` / ``past.<i>.value``
``(B, kv_heads, P, head_dim)``; its outputs are ``logits`` ``(B, T, vocab)`` and
``present.<i>.key`` / ``present.<i>.value`` ``(B, kv_heads, P + T, head_dim)``. Every axis but
the heads and sizes is dynamic, so the same file prefills (``P = 0``: empty past tensors) and
decodes (``T = 1``), as onnxruntime-genai's decoder models and Optimum's merged decoders do.

It is traced with ``torch.onnx`` (TorchScript exporter) around transformers' own forward with a
``DynamicCache`` built from the past tensors and the eager attention, so any ``*ForCausalLM``
whose cache is a plain key/value ``DynamicCache`` exports (Llama / SmolLM, Qwen2, Mistral; tested
on tiny random Llama and Qwen2). The layout is written into the file's metadata
(:data:`META_KEYS`) for :class:`~distillery.llm.runtime.OrtLM`.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import onnx
import torch
from transformers import DynamicCache

from distillery.core.io import atomic_path

logger = logging.getLogger(__name__)

OPSET = 18
"""18, not 17: the int8 ``MatMulNBits`` quantiser rewrites ``ReduceMean`` to opset 18 form."""
META_KEYS = ("layers", "kv_heads", "head_dim", "eos_token_ids", "model_type")


def kv_layout(config) -> dict[str, int]:
    """``layers``, ``kv_heads`` and ``head_dim`` of a causal LM's cache."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return {"layers": config.num_hidden_layers,
            "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
            "head_dim": head_dim}


def io_names(layers: int) -> tuple[list[str], list[str]]:
    """The graph's input and output names."""
    past = [f"past.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    present = [p.replace("past", "present") for p in past]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]


class _DecoderStep(torch.nn.Module):
    """``(input_ids, attention_mask, position_ids, *past) -> (logits, *present)``."""

    def __init__(self, model: torch.nn.Module, layers: int) -> None:
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         position_ids=position_ids, past_key_values=cache, use_cache=True)
        present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
        return (out.logits, *present)


def eos_ids(model, tokenizer) -> list[int]:
    """Token ids that end a generation: the generation config's ``eos_token_id`` (one or a
    list) and the tokenizer's."""
    found: list[int] = []
    for value in (getattr(getattr(model, "generation_config", None), "eos_token_id", None),
                  model.config.eos_token_id, tokenizer.eos_token_id):
        for v in value if isinstance(value, list | tuple) else [value]:
            if v is not None and int(v) not in found:
                found.append(int(v))
    return found


def export(model, tokenizer, dst: str | Path, opset: int = OPSET) -> dict[str, int]:
    """Export a causal LM (fp32, on the CPU) to one ONNX decoder file at ``dst`` (atomic).

    Returns:
        The cache layout written to the metadata (:func:`kv_layout`).
    """
    layout = kv_layout(model.config)
    layers, heads, dim = layout["layers"], layout["kv_heads"], layout["head_dim"]
    inputs, outputs = io_names(layers)
    b, t, p = 1, 3, 2  # traced with a non-empty past; every axis stays dynamic
    example = (torch.randint(0, model.config.vocab_size, (b, t)),
               torch.ones(b, p + t, dtype=torch.long), torch.arange(p, p + t)[None],
               *[torch.zeros(b, heads, p, dim) for _ in range(2 * layers)])
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
            "position_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    axes |= {n: {0: "batch", 2: "past"} for n in inputs[3:]}
    axes |= {n: {0: "batch", 2: "total"} for n in outputs[1:]}
    attn = model.config._attn_implementation
    model.config._attn_implementation = "eager"  # traceable matmul + softmax attention
    try:
        with atomic_path(dst) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_DecoderStep(model.eval(), layers), example, str(tmp),
                              input_names=inputs, output_names=outputs, dynamic_axes=axes,
                              opset_version=opset, dynamo=False)
            proto = onnx.load(str(tmp))
            meta = {**layout, "eos_token_ids": json.dumps(eos_ids(model, tokenizer)),
                    "model_type": model.config.model_type}
            onnx.helper.set_model_props(proto, {k: str(v) for k, v in meta.items()})
            onnx.save(proto, str(tmp))
    finally:
        model.config._attn_implementation = attn
    logger.info("exported %s decoder with KV cache (%d layers) to %s", model.config.model_type,
                layers, dst)
    return layout
