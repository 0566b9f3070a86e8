"""Stage ``llm``'s work for one causal LM (base or specialised): export its variants, measure
torch fp32, then every variant against it, lm-eval included.

For each variant, lm-eval (through :class:`~distillery.lmeval.decoder.DecoderLM`) scores the
classification task and the reference-text perplexity task, and the figures are compared with
the pipeline's own (:mod:`distillery.llm.validate`): per-example class log-likelihoods and the
summed log-likelihood of the text must agree to ``LMEVAL_TOLERANCE``.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillery.llm import recipes, validate
from distillery.llm.answers import PromptItem
from distillery.llm.export import export
from distillery.llm.runtime import CausalLM
from distillery.lmeval import evaluation
from distillery.lmeval.decoder import DecoderLM
from distillery.lmeval.harness import run as run_lm_eval
from distillery.teachers.causal.prompt import Request

logger = logging.getLogger(__name__)

LMEVAL_TOLERANCE = 1e-6
"""Largest |lm-eval - pipeline| log-likelihood (per example; relative for the text's sum)."""
PPL_MAX_LENGTH = 2048
"""Window of the perplexity (the reference documents are shorter: one window each)."""


@dataclass
class Inputs:
    """What every model of the study is measured on."""

    tokenizer: Any
    requests: list[Request]
    """Eval texts in the teacher's prompt, tokenised (:func:`encode_requests`)."""
    labels: np.ndarray
    items: list[PromptItem]
    """The prompt set of the answers."""
    documents: list[str]
    """The reference text (perplexity)."""
    tasks: evaluation.EvalTasks
    max_length: int
    """``teacher.max_length``: classification input tokens."""


@dataclass
class Measured:
    """One model or variant's figures."""

    scores: np.ndarray
    generations: list[list[int]]
    ppl: dict[str, float]
    figures: dict[str, float] = field(default_factory=dict)


def build_variants(model, tokenizer, out: Path, prefix: str, names: list[str],
                   block_size: int) -> dict[str, Path]:
    """Export ``model`` once and write ``<prefix>-onnx-<recipe>.onnx`` per recipe."""
    files = {}
    with tempfile.TemporaryDirectory(prefix="distillery-llm-") as tmp:
        src = Path(tmp) / "decoder.onnx"
        export(model, tokenizer, src)
        for name in names:
            dst = out / f"{prefix}-onnx-{name}.onnx"
            recipes.RECIPES.lookup(name)(src, dst, block_size)
            files[f"{prefix}-onnx-{name}"] = dst
            logger.info("%s: %.1f MB", dst.name, dst.stat().st_size / 1e6)
    return files


def prefix_token(tokenizer) -> int:
    """BOS, else EOS: the token before a document's first (lm-eval's rule)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
        else tokenizer.eos_token_id


def measure(lm: CausalLM, x: Inputs, gen_tokens: int, scores: np.ndarray | None = None
            ) -> Measured:
    """Class scores (unless given), greedy generations and perplexity of one model."""
    if scores is None:
        scores = validate.class_scores(lm, x.requests, x.max_length, desc=f"{lm.name} classify")
    gens = [lm.greedy(x.tokenizer.encode(it.model_input), gen_tokens).tokens for it in x.items]
    ppl = validate.perplexity(lm, x.tokenizer, x.documents, PPL_MAX_LENGTH,
                              prefix_token(x.tokenizer))
    return Measured(scores, gens, ppl)


def compare(m: Measured, ref: Measured, x: Inputs, gen_tokens: int) -> dict[str, float]:
    """A variant's figures against torch fp32's."""
    pred, ref_pred = m.scores.argmax(-1), ref.scores.argmax(-1)
    acc, ref_acc = float((pred == x.labels).mean()), float((ref_pred == x.labels).mean())
    match = validate.greedy_match(ref.generations, m.generations, gen_tokens)
    label = [ok for ok, it in zip(match, x.items, strict=True) if it.kind == "label"]
    open_ = [ok for ok, it in zip(match, x.items, strict=True) if it.kind == "open"]
    return {"accuracy": acc, "accuracy_drop": ref_acc - acc,
            "agreement": float((pred == ref_pred).mean()),
            "greedy_match": float(np.mean(match)),
            "greedy_match_label": float(np.mean(label)) if label else float("nan"),
            "greedy_match_open": float(np.mean(open_)) if open_ else float("nan"),
            "word_perplexity": m.ppl["word_perplexity"],
            "ppl_ratio": m.ppl["word_perplexity"] / ref.ppl["word_perplexity"]}


def lm_eval_check(lm: CausalLM, x: Inputs, m: Measured, limit: int) -> dict[str, float]:
    """lm-eval's classification and perplexity of ``lm`` and their largest difference from
    the pipeline's; raises if they differ by more than :data:`LMEVAL_TOLERANCE`."""
    cls = evaluation.task_scores(None, None, x.tasks.classify, limit=limit,
                                 lm=DecoderLM(lm, x.tokenizer, max_length=x.max_length))
    ll_diff = float(np.abs(cls.log_likelihoods - m.scores).max())
    text = run_lm_eval(DecoderLM(lm, x.tokenizer, max_length=PPL_MAX_LENGTH), [x.tasks.text])
    word_ppl = float(text["results"][x.tasks.text.stem]["word_perplexity,none"])
    ppl_diff = abs(word_ppl / m.ppl["word_perplexity"] - 1)
    if ll_diff > LMEVAL_TOLERANCE or ppl_diff > LMEVAL_TOLERANCE:
        raise RuntimeError(f"{lm.name}: lm-eval and the pipeline disagree (log-likelihood "
                           f"{ll_diff:.3g}, word perplexity {ppl_diff:.3g} relative)")
    return {"lm_eval_acc": cls.acc, "lm_eval_max_ll_diff": ll_diff,
            "lm_eval_word_perplexity": word_ppl, "lm_eval_ppl_rel_diff": ppl_diff}
