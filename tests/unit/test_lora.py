"""Tests of ``distillery.modeling.lora``: which parameters train under LoRA, and exact merging."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from transformers import BertForSequenceClassification

from distillery.modeling import lora

HP = lora.LoraHyper(lr=1e-3, rank=4, alpha=8, dropout=0.1)


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 53, (3, 9), generator=g)  # (B, T)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _trainable(model) -> dict[str, int]:
    return {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    ("targets", "n_adapted"),
    # "dense" also matches bert.pooler.dense: 2 layers x 6 Linears + the pooler
    [(["query", "value"], 4), (["query", "key", "value", "dense"], 2 * 6 + 1)],
    ids=["query-value", "all-linear"],
)
def test_apply_lora_trains_only_adapters_and_the_head(tiny_model, targets, n_adapted):
    peft_model = lora.apply_lora(tiny_model, HP, targets)
    trainable = _trainable(peft_model)
    lora_names = [n for n in trainable if ".lora_" in n]
    head_names = [n for n in trainable if ".classifier." in n]
    assert sorted(lora_names + head_names) == sorted(trainable)
    assert len(lora_names) == 2 * n_adapted  # an A and a B matrix per adapted Linear
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora_names}
    assert adapted == set(targets)
    assert sum(trainable[n] for n in head_names) == 32 * 2 + 2
    if targets == ["query", "value"]:  # 4 Linears (32 -> 32) x (A: 4x32 + B: 32x4), + head
        assert sum(trainable.values()) == 4 * 2 * 4 * 32 + 66


def test_apply_lora_freezes_the_base_weights(tiny_model):
    peft_model = lora.apply_lora(tiny_model, HP, ["query", "value"])
    frozen = {n for n, p in peft_model.named_parameters() if not p.requires_grad}
    assert any(n.endswith("attention.self.query.base_layer.weight") for n in frozen)
    assert any(n.endswith("word_embeddings.weight") for n in frozen)
    assert any(n.endswith("attention.self.key.weight") for n in frozen)


def test_merge_returns_a_plain_model_with_identical_logits(tiny_model, inputs):
    tiny_model.eval()
    with torch.no_grad():
        base = tiny_model(**inputs).logits
    peft_model = lora.apply_lora(tiny_model, HP, ["query", "value"])
    with torch.no_grad():  # B starts at zero: give the adapters and the head something to do
        for name, p in peft_model.named_parameters():
            if ".lora_B." in name or ".modules_to_save." in name:
                p.add_(torch.randn_like(p) * 0.5)
    peft_model.eval()
    with torch.no_grad():
        adapted = peft_model(**inputs).logits
    assert not torch.allclose(adapted, base, atol=1e-3)
    merged = lora.merge(peft_model).eval()
    assert type(merged) is BertForSequenceClassification and not isinstance(merged, PeftModel)
    assert not any("lora" in n or "modules_to_save" in n for n, _ in merged.named_modules())
    with torch.no_grad():
        torch.testing.assert_close(merged(**inputs).logits, adapted, atol=1e-5, rtol=1e-5)
