"""One interface over a causal LM in ONNX Runtime (:class:`OrtLM`, a file written by
:mod:`distillery.llm.export`) and in torch (:class:`TorchLM`): the log-probabilities of a
token list, and greedy generation with a KV cache, timed as a caller sees it (time to first
token = prefill + first token; decode = every later token).

Both run one sequence at a time (batch 1), unpadded: log-probabilities are then the same
computation wherever they are asked for (the stage, lm-eval, the demo), to the last bit.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distillery.llm.export import io_names


@dataclass
class Generation:
    """A greedy generation: the new tokens and its timings."""

    tokens: list[int]
    ttft_s: float
    """Prompt in -> first new token out (prefill + one argmax)."""
    decode_s: float
    """Every later token."""
    stopped: bool = False
    """It ended on an end-of-sequence token (not included in ``tokens``)."""
    step_s: list[float] = field(default_factory=list)

    @property
    def decode_tps(self) -> float:
        """Decode tokens per second (tokens after the first)."""
        n = len(self.tokens) - 1
        return n / self.decode_s if n > 0 and self.decode_s > 0 else math.nan


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, in float64."""
    x = logits.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


class CausalLM:
    """Log-probabilities and greedy generation over :meth:`_step` (subclasses)."""

    eos: list[int]
    name: str

    def _step(self, ids: list[int], state: Any) -> tuple[np.ndarray, Any]:
        """Feed ``ids`` after the cached ``state`` (None: empty); logits ``(T, V)`` and the
        new state."""
        raise NotImplementedError

    def logits(self, tokens: list[int]) -> np.ndarray:
        """``(T, V)`` next-token logits at every position of ``tokens``, from an empty cache."""
        if not tokens:
            raise ValueError("no tokens")
        return self._step(list(tokens), None)[0]

    def log_probs(self, tokens: list[int]) -> np.ndarray:
        """``(T, V)`` float64 log-probabilities of the next token at every position."""
        return log_softmax(self.logits(tokens))

    def greedy(self, tokens: list[int], max_new_tokens: int, stop_at_eos: bool = True
               ) -> Generation:
        """Greedy decoding of up to ``max_new_tokens`` after ``tokens``."""
        out: list[int] = []
        steps: list[float] = []
        state, feed, stopped = None, list(tokens), False
        for _ in range(max_new_tokens):
            start = time.perf_counter()
            logits, state = self._step(feed, state)
            nxt = int(logits[-1].argmax())
            steps.append(time.perf_counter() - start)
            if stop_at_eos and nxt in self.eos:
                stopped = True
                break
            out.append(nxt)
            feed = [nxt]
        return Generation(out, steps[0] if steps else 0.0, float(sum(steps[1:])), stopped, steps)


class OrtLM(CausalLM):
    """A decoder file of :func:`distillery.llm.export.export` in ONNX Runtime (CPU)."""

    def __init__(self, path: str | Path, threads: int = 0, name: str | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.layers, self.kv_heads = int(meta["layers"]), int(meta["kv_heads"])
        self.head_dim = int(meta["head_dim"])
        self.eos = json.loads(meta["eos_token_ids"])
        self.inputs, self.outputs = io_names(self.layers)
        self.name = name or self.path.stem

    def _step(self, ids: list[int], state: Any) -> tuple[np.ndarray, Any]:
        if state is None:
            state = [np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32)] * (
                2 * self.layers)
        past = state[0].shape[2]
        total = past + len(ids)
        feeds = {"input_ids": np.array([ids], dtype=np.int64),
                 "attention_mask": np.ones((1, total), dtype=np.int64),
                 "position_ids": np.arange(past, total, dtype=np.int64)[None]}
        feeds |= dict(zip(self.inputs[3:], state, strict=True))
        logits, *present = self.session.run(self.outputs, feeds)
        return logits[0], present


class TorchLM(CausalLM):
    """A transformers causal LM (fp32, CPU), stepped by hand with a ``DynamicCache``: the
    loop of ``generate`` without its sampling machinery, so that both runtimes are timed
    through the same loop."""

    def __init__(self, model, eos: list[int], name: str = "torch-fp32") -> None:
        self.model, self.eos, self.name = model.eval(), list(eos), name

    @torch.inference_mode()
    def _step(self, ids: list[int], state: Any) -> tuple[np.ndarray, Any]:
        from transformers import DynamicCache

        cache = DynamicCache() if state is None else state
        past = cache.get_seq_length()
        x = torch.tensor([ids])
        out = self.model(input_ids=x, attention_mask=torch.ones(1, past + len(ids),
                                                                dtype=torch.long),
                         position_ids=torch.arange(past, past + len(ids))[None],
                         past_key_values=cache, use_cache=True)
        return out.logits[0].float().numpy(), out.past_key_values
