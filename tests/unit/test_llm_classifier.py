"""The classifier form of a causal-LM classifier (:mod:`distillery.teachers.causal.classifier`):
tiny random Llama / Qwen2 / GPT-2 models give the class distribution of lm-eval's
log-likelihoods through the pipeline's own tokenisation path, save and reload as plain
sequence classifiers, and export to ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillery.core.io import UserError
from distillery.data import prepared
from distillery.export import onnx_export
from distillery.measure import evaluate
from distillery.modeling import loading
from distillery.teachers.causal import Prompt, class_log_scores
from distillery.teachers.causal.classifier import (
    is_prompted,
    prompted_tokenizer,
    save,
    to_sequence_classifier,
    token_match,
)
from tests.conftest import make_pairs, make_sentences
from tests.unit.llm_toys import bpe_tokenizer, causal_lm

LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def toks():
    return {True: bpe_tokenizer(bos=True), False: bpe_tokenizer(bos=False)}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_classifier_form_gives_lm_eval_class_distribution(arch, toks):
    tok = toks[arch != "gpt2"]
    lm = causal_lm(arch, len(tok))
    prompt = Prompt.build(LABELS)
    split = make_sentences(24, seed=3)
    clf, ptok, facts = to_sequence_classifier(lm, tok, prompt, split.texts)
    assert facts.token_match == 1.0 and facts.prefix_space
    ref = class_log_scores(lm, tok, prompt, split, max_length=128)
    got = evaluate.predict_logits(clf, split, ptok, 128, batch_size=5)  # padded batches
    np.testing.assert_allclose(_softmax(got), _softmax(ref), atol=1e-5)
    assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_pair_prompt_classifier_form(toks):
    tok = toks[True]
    lm = causal_lm("llama", len(tok))
    prompt = Prompt.build(["no", "yes"], verbalizers=[" negative", " positive"], pair=True)
    split = make_pairs(12, seed=1)
    clf, ptok, facts = to_sequence_classifier(lm, tok, prompt, split.texts, split.pairs)
    ref = class_log_scores(lm, tok, prompt, split, max_length=128)
    got = evaluate.predict_logits(clf, split, ptok, 128)
    match = token_match(tok, ptok, prompt, split.texts, split.pairs) == 1.0
    assert match == (facts.token_match == 1.0)
    if match:
        np.testing.assert_allclose(_softmax(got), _softmax(ref), atol=1e-5)


def test_truncation_keeps_the_prompt(toks):
    tok = toks[False]
    ptok = prompted_tokenizer(tok, Prompt.build(LABELS), prefix_space=True)
    enc = prepared.encode(ptok, [" ".join(["good"] * 300)], None, 32, return_tensors=None)
    ids = enc["input_ids"][0]
    assert len(ids) == 32
    assert ptok.decode(ids).startswith("Review:")
    assert ptok.decode(ids).endswith("\nSentiment:")


def test_saved_form_reloads_through_the_one_loading_path(toks, tmp_path):
    tok = toks[True]
    lm = causal_lm("qwen2", len(tok))
    split = make_sentences(10, seed=5)
    clf, ptok, _ = to_sequence_classifier(lm, tok, Prompt.build(LABELS), split.texts)
    save(clf, ptok, tmp_path / "form")
    tmp_path = tmp_path / "form"
    back, back_tok = loading.load_classifier(str(tmp_path)), loading.load_tokenizer(str(tmp_path))
    assert is_prompted(back.config)
    assert back.config.id2label == {0: "negative", 1: "positive"}
    np.testing.assert_allclose(evaluate.predict_logits(back, split, back_tok, 64),
                               evaluate.predict_logits(clf, split, ptok, 64), atol=1e-6)


def test_multi_token_verbalizers_are_refused_naming_the_key(toks):
    tok = toks[False]
    lm = causal_lm("gpt2", len(tok))
    prompt = Prompt.build(LABELS, verbalizers=[" very bad", " very good"])
    with pytest.raises(UserError, match="teacher.verbalizers"):
        to_sequence_classifier(lm, tok, prompt)


def test_classifier_form_exports_to_onnx(toks, tmp_path):
    tok = toks[True]
    lm = causal_lm("llama", len(tok))
    split = make_sentences(8, seed=2)
    clf, ptok, _ = to_sequence_classifier(lm, tok, Prompt.build(LABELS), split.texts)
    path = tmp_path / "teacher.onnx"
    onnx_export.export(clf, path, 18, prepared.model_inputs(ptok, False))
    from distillery.measure import bench

    got = evaluate.onnx_logits(bench.ort_session(str(path), "cpu"), split, ptok, 64)
    ref = evaluate.predict_logits(clf, split, ptok, 64)
    assert onnx_export.compare(ref, got).max_abs_diff < 1e-4


def test_unmerged_adapters_are_refused(toks):
    from distillery.modeling.lora import LoraHyper
    from distillery.teachers.causal.finetune import apply_lora

    tok = toks[False]
    peft_model = apply_lora(causal_lm("gpt2", len(tok)), LoraHyper(1e-3, 2, 4, 0.0, 0.0))
    with pytest.raises(ValueError, match="merge"):
        to_sequence_classifier(peft_model, tok, Prompt.build(LABELS))
    torch.manual_seed(0)
