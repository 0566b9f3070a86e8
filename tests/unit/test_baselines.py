"""Baselines: TF-IDF + logistic regression learns a tiny task, picks its C on val, and comes
back from disk (JSON + safetensors, no pickle) with identical logits; the static student's
module pools its tokens; bad params and unknown kinds end in one message. (The static
student's whole path, model2vec included, runs in the stage chain test.)"""

from __future__ import annotations

import numpy as np
import pytest

from distillery import baselines
from distillery.baselines import Context, static, tfidf
from distillery.config.baselines import BaselinesParams
from distillery.core.io import UserError
from distillery.measure import evaluate
from tests.conftest import make_pairs, make_sentences


@pytest.mark.parametrize("maker", [make_sentences, make_pairs], ids=["single", "pairs"])
def test_tfidf_learns_and_round_trips(tmp_path, maker):
    train, val, dev = maker(200, seed=0), maker(40, seed=1), maker(60, seed=2)
    names = [str(i) for i in range(max(train.labels) + 1)]
    p = BaselinesParams(tfidf_c=[0.1, 10.0])
    ctx = Context({"train": train, "val": val}, names, "accuracy", tmp_path)
    model, facts = tfidf.train(ctx, p)
    logits = model.logits(dev.texts, dev.pairs)
    assert logits.shape == (len(dev), len(names))
    assert evaluate.accuracy(logits, dev.labels) > 0.8  # the tiny tasks are keyword tasks
    assert facts["C"] in (0.1, 10.0) and facts["features"] > 0
    assert sorted(f.name for f in (tmp_path / "tfidf").iterdir()) == [
        "baseline.json", "vocabulary.json", "weights.safetensors"]
    back = baselines.load(tmp_path / "tfidf")
    np.testing.assert_allclose(back.logits(dev.texts, dev.pairs), logits, rtol=1e-6, atol=1e-6)
    assert back.labels == names and back.n_params == model.n_params


def test_two_class_logits_argmax_is_the_predicted_class(tmp_path):
    train = make_sentences(100, seed=0)
    ctx = Context({"train": train, "val": make_sentences(20, seed=1)}, ["neg", "pos"],
                  "accuracy", tmp_path)
    model, _ = tfidf.train(ctx, BaselinesParams(tfidf_c=[1.0]))
    x = model.features(train.texts)
    np.testing.assert_array_equal(model.logits(train.texts).argmax(-1),
                                  model.clf.predict(x))


def test_static_classifier_averages_the_unpadded_tokens():
    import torch

    emb = torch.tensor([[0.0, 0.0], [1.0, 3.0], [3.0, 5.0], [9.0, 9.0]])
    model = static.StaticClassifier(emb, 2, dropout=0.0).eval()
    with torch.no_grad():
        model.head.weight.copy_(torch.eye(2))
        model.head.bias.zero_()
        out = model(input_ids=torch.tensor([[1, 2, 3], [1, 1, 0]]),
                    attention_mask=torch.tensor([[1, 1, 0], [1, 1, 0]])).logits
    assert out.tolist() == [[2.0, 4.0], [1.0, 3.0]]  # token 3 is padding in the first row
    assert model.config.num_labels == 2


def test_unknown_kind_and_bad_params():
    with pytest.raises(UserError, match="unknown baseline 'bow'; available: tfidf, static"):
        baselines.KINDS.lookup("bow")
    problems = BaselinesParams(tfidf_word_ngrams=[2, 1], tfidf_c=[0.0, float("inf")]).check()
    assert any("tfidf_word_ngrams: got [2, 1]" in x for x in problems)
    assert any("tfidf_c:" in x for x in problems)


@pytest.mark.parametrize("vocab, padding, unk_id, expected", [
    (["[PAD]", "[UNK]", "a"], None, 1, ("[PAD]", "[UNK]")),  # BERT-like
    (["<|endoftext|>", "<|im_end|>", "a"], None, None, ("<|endoftext|>", None)),  # a causal LM
    (["<s>", "</s>", "a"], "</s>", None, ("</s>", None)),  # padding configured
])
def test_the_static_tokenizer_pads_with_its_own_tokens(vocab, padding, unk_id, expected):
    """A pad or unknown token the tokenizer lacks would be added past the embedding table
    (the SmolLM2 teacher's static baseline died with an IndexError)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    tk = Tokenizer(WordLevel({t: i for i, t in enumerate(vocab)}))
    if padding:
        tk.enable_padding(pad_id=vocab.index(padding), pad_token=padding)
    out = static.special_tokens(tk, unk_id)
    assert (out["pad_token"], out["unk_token"]) == expected
    from transformers import PreTrainedTokenizerFast

    assert len(PreTrainedTokenizerFast(tokenizer_object=tk, **out)) == len(vocab)  # none added
