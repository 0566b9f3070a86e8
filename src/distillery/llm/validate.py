"""What a generation variant keeps of torch fp32, measured three ways:

- **greedy tokens**: per prompt, whether its first ``n`` greedy tokens equal the reference's
  (:func:`greedy_match`);
- **classification** through the verbalizers: the class log-likelihoods of every eval text
  (:func:`class_scores`: the verbalizer's log-probability after the prompt, as
  :func:`distillery.teachers.causal.scoring.score_requests` computes it in torch, here one
  unpadded sequence at a time), accuracy and agreement with the reference's predictions;
- **perplexity** of the reference text of :mod:`distillery.lmeval.perplexity`
  (:func:`perplexity`): every token predicted once, in disjoint windows of ``max_length`` tokens
  after a prefix token, each window with as much preceding context as fits — the windows of
  lm-eval's ``loglikelihood_rolling``, computed here without lm-eval so that the two can be
  compared.

:func:`problems` turns the figures into the stage's failures, naming the ``llm.*`` tolerance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from distillery.llm.runtime import CausalLM
from distillery.teachers.causal.prompt import Request


def class_scores(lm: CausalLM, requests: Sequence[Request], max_length: int,
                 desc: str | None = None) -> np.ndarray:
    """``(N, C)`` summed log-probabilities of every class's continuation."""
    out = np.zeros((len(requests), len(requests[0].continuations) if requests else 0))
    for i, r in enumerate(tqdm(requests, desc=desc, disable=desc is None, leave=False)):
        if all(len(c) == 1 for c in r.continuations):  # one forward for every class
            logp = lm.log_probs(r.context[-max_length:])[-1]
            out[i] = [logp[c[0]] for c in r.continuations]
            continue
        for j, c in enumerate(r.continuations):
            logp = lm.log_probs((r.context + c)[:-1][-max_length:])[-len(c):]
            out[i, j] = sum(logp[k, t] for k, t in enumerate(c))
    return out


def windows(tokens: Sequence[int], prefix: int, max_length: int
            ) -> list[tuple[list[int], list[int]]]:
    """``(input, targets)`` per window: the last ``len(targets)`` positions of ``input``
    predict ``targets``, the next tokens of ``[prefix] + tokens`` not yet predicted."""
    seq = [prefix, *tokens]
    out, done = [], 0
    while done < len(tokens):
        end = min(done + max_length, len(tokens))  # predicts seq[done + 1 .. end]
        out.append((seq[max(0, end - max_length):end], list(tokens[done:end])))
        done = end
    return out


def perplexity(lm: CausalLM, tokenizer, documents: Sequence[str], max_length: int,
               prefix: int) -> dict[str, float]:
    """``word_perplexity``, ``byte_perplexity``, ``bits_per_byte`` and the summed
    log-likelihood over ``documents`` (lm-eval's definitions: words = whitespace-separated
    pieces, bytes = UTF-8), tokenised without special tokens."""
    total = 0.0
    for doc in documents:
        for inp, targets in windows(tokenizer.encode(doc, add_special_tokens=False), prefix,
                                    max_length):
            logp = lm.log_probs(inp)[-len(targets):]
            total += float(sum(logp[k, t] for k, t in enumerate(targets)))
    words = sum(len(re.split(r"\s+", d)) for d in documents)
    n_bytes = sum(len(d.encode("utf-8")) for d in documents)
    return {"word_perplexity": math.exp(-total / words),
            "byte_perplexity": math.exp(-total / n_bytes),
            "bits_per_byte": -total / n_bytes / math.log(2), "log_likelihood": total}


def greedy_match(reference: Sequence[Sequence[int]], variant: Sequence[Sequence[int]],
                 n: int) -> list[bool]:
    """Per prompt: the first ``n`` greedy tokens are the same (a generation that stopped at an
    end-of-sequence token matches only one that stopped at the same place)."""
    return [list(a[:n]) == list(b[:n]) for a, b in zip(reference, variant, strict=True)]


def problems(name: str, figures: dict[str, float], p) -> list[str]:
    """The tolerances of ``llm.*`` (``LlmParams``) that variant ``name`` misses."""
    out = []
    if figures["accuracy_drop"] > p.max_accuracy_drop:
        out.append(f"{name}: eval accuracy {figures['accuracy_drop']:.4f} below torch fp32's "
                   f"(llm.max_accuracy_drop {p.max_accuracy_drop})")
    if figures["agreement"] < p.min_agreement:
        out.append(f"{name}: {figures['agreement']:.4f} of eval predictions equal torch fp32's "
                   f"(llm.min_agreement {p.min_agreement})")
    if figures["ppl_ratio"] > p.max_ppl_ratio:
        out.append(f"{name}: word perplexity {figures['ppl_ratio']:.3f}x torch fp32's "
                   f"(llm.max_ppl_ratio {p.max_ppl_ratio})")
    if figures["greedy_match"] < p.min_greedy_match:
        out.append(f"{name}: {figures['greedy_match']:.3f} of prompts keep torch fp32's greedy "
                   f"tokens (llm.min_greedy_match {p.min_greedy_match})")
    return out
