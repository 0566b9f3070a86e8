"""Tests of ``distillery.prune``: global magnitude pruning of the encoder's Linear weights."""

from __future__ import annotations

import pytest
import torch

from distillery import prune


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 53, (4, 10), generator=g)  # (B, T)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _logits(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


def _prunable_total(model) -> int:
    return sum(getattr(m, n).numel() for m, n in prune.prunable(model))


def test_prunable_is_every_encoder_linear_and_nothing_else(tiny_model):
    names = {n for n, m in tiny_model.named_modules() if isinstance(m, torch.nn.Linear)}
    chosen = {n for n, m in tiny_model.named_modules()
              if any(m is module for module, _ in prune.prunable(tiny_model))}
    assert len(chosen) == 2 * 6  # query, key, value, attention out, intermediate, output
    assert all(".encoder.layer." in n for n in chosen)
    assert names - chosen == {"bert.pooler.dense", "classifier"}


def test_zero_sparsity_leaves_logits_unchanged(tiny_model, inputs):
    before = _logits(tiny_model, inputs)
    prune.apply_global_magnitude(tiny_model, 0.0)
    assert prune.sparsity(tiny_model) == 0.0
    assert torch.equal(_logits(tiny_model, inputs), before)


@pytest.mark.parametrize("target", [0.1, 0.3, 0.5, 0.9])
def test_achieved_sparsity_matches_target(tiny_model, inputs, target):
    before = _logits(tiny_model, inputs)
    prune.apply_global_magnitude(tiny_model, target)
    assert prune.sparsity(tiny_model) == pytest.approx(target, abs=1 / _prunable_total(tiny_model))
    assert not torch.equal(_logits(tiny_model, inputs), before)


def _magnitudes(model) -> torch.Tensor:
    return torch.cat([getattr(m, n).detach().abs().flatten() for m, n in prune.prunable(model)])


def test_smallest_magnitudes_go_first(tiny_model):
    weights = _magnitudes(tiny_model)
    prune.apply_global_magnitude(tiny_model, 0.5)
    kept = _magnitudes(tiny_model)
    pruned_was = weights[kept == 0]
    assert pruned_was.max() <= weights[kept != 0].min()


def test_embeddings_pooler_classifier_and_biases_are_untouched(tiny_model):
    pruned = {f"{n}.weight" for n, m in tiny_model.named_modules()
              if any(m is module for module, _ in prune.prunable(tiny_model))}
    before = {k: v.clone() for k, v in tiny_model.state_dict().items() if k not in pruned}
    assert any(".embeddings." in k for k in before) and "classifier.weight" in before
    prune.apply_global_magnitude(tiny_model, 0.9)
    after = tiny_model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_masks_survive_a_recovery_step(tiny_model, inputs):
    prune.apply_global_magnitude(tiny_model, 0.5)
    achieved = prune.sparsity(tiny_model)
    opt = torch.optim.SGD([p for p in tiny_model.parameters() if p.requires_grad], lr=0.1)
    tiny_model.train()
    tiny_model(**inputs).logits.pow(2).sum().backward()
    opt.step()
    assert prune.sparsity(tiny_model) == achieved


def test_make_permanent_removes_masks_and_keeps_zeros(tiny_model, inputs):
    prune.apply_global_magnitude(tiny_model, 0.4)
    achieved = prune.sparsity(tiny_model)
    before = _logits(tiny_model, inputs)
    assert any(k.endswith("weight_orig") for k in tiny_model.state_dict())
    prune.make_permanent(tiny_model)
    keys = tiny_model.state_dict().keys()
    assert not any(k.endswith(("weight_orig", "weight_mask")) for k in keys)
    assert all(isinstance(m.weight, torch.nn.Parameter) and not m._forward_pre_hooks
               for m, _ in prune.prunable(tiny_model))
    assert prune.sparsity(tiny_model) == achieved
    assert torch.equal(_logits(tiny_model, inputs), before)
    prune.make_permanent(tiny_model)  # idempotent


def test_a_model_outside_the_families_is_an_error():
    with pytest.raises(ValueError, match="model type None is not supported"):
        prune.apply_global_magnitude(torch.nn.Sequential(torch.nn.Linear(4, 4)), 0.5)
