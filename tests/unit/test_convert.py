"""Tests of ``distillery.modeling.convert``: a BERT encoder rewritten as DistilBERT computes the
same hidden states, and the saved folder is a DistilBERT teacher the pipeline loads."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertModel, DistilBertForSequenceClassification, GPT2Config, GPT2Model

from distillery.data import prepared
from distillery.modeling import convert, loading
from tests.conftest import tiny_config


def test_distilbert_computes_the_bert_hidden_states():
    torch.manual_seed(0)
    bert = BertModel(tiny_config(type_vocab_size=2, hidden_dropout_prob=0.0)).eval()
    distil = convert.bert_to_distilbert(bert).eval()
    ids = torch.randint(5, 50, (3, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = distil(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got[mask.bool()], want[mask.bool()], atol=1e-5, rtol=0)
    assert distil.config.n_layers == 2 and distil.config.dim == 32


def test_only_bert_converts():
    with pytest.raises(ValueError, match="must be a BERT encoder, got model type 'gpt2'"):
        convert.bert_to_distilbert(GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2)))


def test_converted_folder_is_a_distilbert_teacher(tiny_teacher_dir, tmp_path):
    out = tmp_path / "distil"
    convert.main(["--from", str(tiny_teacher_dir), "--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "distilbert"
    assert config["distillery_converted_from"] == str(tiny_teacher_dir)
    assert (out / "model.safetensors").is_file()
    assert loading.check_teacher(str(out)) == "distilbert"
    model = loading.load_classifier(str(out), ["a", "b", "c"])
    assert isinstance(model, DistilBertForSequenceClassification)
    tok = loading.load_tokenizer(str(out))
    assert prepared.model_inputs(tok, pair=True) == ["input_ids", "attention_mask"]
    enc = prepared.encode(tok, ["a good film"], ["it is"], max_length=16)
    assert model(**enc).logits.shape == (1, 3)
