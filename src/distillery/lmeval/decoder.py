"""A generation variant of a causal LM as an lm-eval language model: ``--model distillery-llm``.

:class:`DecoderLM` subclasses lm-eval's ``TemplateLM`` (which tokenises ``(context,
continuation)`` pairs as ``HFLM`` does) over a :class:`~distillery.llm.runtime.CausalLM`: an
ONNX decoder with a KV cache (:class:`~distillery.llm.runtime.OrtLM`) or a torch model. It
answers all three request types:

- ``loglikelihood``: each ``(context, continuation)`` runs unpadded through the model (batch
  1), the continuation's log-probabilities summed (``is_greedy``: every continuation token is
  the argmax); one-token continuations of the same context share one forward;
- ``loglikelihood_rolling`` (perplexity): lm-eval's own disjoint rolling windows of
  ``max_length`` tokens with the prefix token (BOS, else EOS) before the first, tokenised
  without special tokens, as :mod:`distillery.lmeval.perplexity` asks of ``HFLM``;
- ``generate_until``: greedy decoding with the KV cache up to ``max_gen_toks`` (default
  :data:`MAX_GEN_TOKS`), cut at the first ``until`` string or an end-of-sequence token.

Model args (CLI): ``path`` (an ``.onnx`` decoder of :mod:`distillery.llm.export`), ``tokenizer``
(a folder; required), ``max_length`` (default 2048), ``threads``.
"""

from __future__ import annotations

from typing import Any

from lm_eval import utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from tqdm.auto import tqdm

from distillery.core.io import UserError
from distillery.llm.runtime import CausalLM

MODEL_NAME = "distillery-llm"
MAX_GEN_TOKS = 256
DEFAULT_MAX_LENGTH = 2048


def cut_at(text: str, until: list[str]) -> str:
    """``text`` up to the first of the ``until`` strings."""
    for stop in until:
        if stop and stop in text:
            text = text[:text.index(stop)]
    return text


@register_model(MODEL_NAME)
class DecoderLM(TemplateLM):
    """lm-eval's three request types over a :class:`~distillery.llm.runtime.CausalLM`."""

    def __init__(self, lm: CausalLM | None = None, tokenizer: Any = None,
                 max_length: int | str = DEFAULT_MAX_LENGTH, path: str | None = None,
                 threads: int | str = 0, max_gen_toks: int | str = MAX_GEN_TOKS,
                 batch_size: Any = None, device: Any = None, **unknown: Any) -> None:
        super().__init__()
        if unknown:
            raise UserError(f"model_args: unknown {', '.join(sorted(unknown))}; allowed: path, "
                            "tokenizer, max_length, threads, max_gen_toks")
        if lm is None:
            if path is None or tokenizer is None:
                raise UserError("model_args: give path=<decoder .onnx> and tokenizer=<folder>")
            from transformers import AutoTokenizer

            from distillery.llm.runtime import OrtLM

            lm = OrtLM(path, int(threads))
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        self.lm, self.tokenizer = lm, tokenizer
        self._max_length, self.max_gen_toks = int(max_length), int(max_gen_toks)
        self._memo: tuple[tuple[int, ...], Any] | None = None

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        """BOS, else EOS (``HFLM``'s rule)."""
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        return self._max_length

    def tok_encode(self, string: str, add_special_tokens: bool | None = None,
                   **kwargs: Any) -> list[int]:
        kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        return self.tokenizer.encode(string, **kw)

    def tok_decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _log_probs(self, inp: list[int]):
        key = tuple(inp)
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, self.lm.log_probs(inp))
        return self._memo[1]

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False,
                              **kwargs: Any) -> list[tuple[float, bool]]:
        out = []
        for args, context, continuation in tqdm(requests, disable=disable_tqdm,
                                                desc="loglikelihood", leave=False):
            inp = (context + continuation)[:-1][-self.max_length:]
            logp = self._log_probs(inp)[-len(continuation):]
            ll = float(sum(float(logp[i, t]) for i, t in enumerate(continuation)))
            greedy = all(int(logp[i].argmax()) == t for i, t in enumerate(continuation))
            out.append((ll, greedy))
            if args is not None:
                self.cache_hook.add_partial("loglikelihood", args, (ll, greedy))
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        out = []
        for (string,) in tqdm([r.args for r in requests], disable=disable_tqdm,
                              desc="loglikelihood_rolling", leave=False):
            windows = map(utils.make_disjoint_window, utils.get_rolling_token_windows(
                token_list=self.tok_encode(string, add_special_tokens=False),
                prefix_token=self.prefix_token_id, max_seq_len=self.max_length,
                context_len=1))
            total = sum(ll for ll, _ in self._loglikelihood_tokens(
                [(None, ctx, cont) for ctx, cont in windows], disable_tqdm=True))
            self.cache_hook.add_partial("loglikelihood_rolling", (string,), total)
            out.append(total)
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for context, gen_kwargs in tqdm([r.args for r in requests], disable=disable_tqdm,
                                        desc="generate_until", leave=False):
            kwargs = dict(gen_kwargs)
            until = kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            n = int(kwargs.pop("max_gen_toks", self.max_gen_toks))
            if kwargs.pop("do_sample", False) or kwargs.get("temperature", 0.0) not in (0, 0.0):
                raise UserError("generate_until: only greedy decoding (do_sample false, "
                                "temperature 0) is supported")
            tokens = self.tok_encode(context)[-(self.max_length - n):]
            text = cut_at(self.tok_decode(self.lm.greedy(tokens, n).tokens), until)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            out.append(text)
        return out

    def get_model_info(self) -> dict[str, Any]:
        return {"backend": type(self.lm).__name__, "model": getattr(self.lm, "name", ""),
                "max_length": self.max_length}
