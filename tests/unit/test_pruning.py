"""Tests of ``distillery.compress.pruning``: the registry, global magnitude pruning of the encoder's
Linear weights (``unstructured``) and head / FFN-neuron removal (``structured``) on every
family that supports it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertTokenizerFast

from distillery.compress import pruning
from distillery.compress.pruning import structured
from distillery.compress.pruning import unstructured as prune
from distillery.data.prepared import Split
from distillery.distill import losses
from distillery.export import onnx_export
from distillery.measure import bench
from distillery.modeling import families, loading
from tests.conftest import VOCAB, make_sentences
from tests.unit.test_families import CONFIGS, _inputs

STRUCTURED = ["bert", "roberta", "xlm-roberta", "electra", "distilbert"]
structured_types = pytest.mark.parametrize("model_type", STRUCTURED)


def test_registry_maps_every_method():
    assert set(pruning.METHODS) == {"unstructured", "structured"}


# --------------------------------------------------------------------------- unstructured


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


# --------------------------------------------------------------------------- structured

HEAD_SCORES = torch.tensor([0.1, 0.9, 0.5, 0.2])  # keep_heads 0.5 keeps heads 1 and 2
N_HEADS, HEAD_SIZE, N_NEURONS = 4, 8, 37  # the tiny configs: hidden 32, 4 heads, FFN 37


def _model(model_type: str):
    torch.manual_seed(1)
    config = CONFIGS[model_type]()
    config.initializer_range = 0.2  # logits far apart: comparisons mean something
    return AutoModelForSequenceClassification.from_config(config).eval()


def _scores(n_layers: int = 2) -> structured.Scores:
    g = torch.Generator().manual_seed(3)
    return structured.Scores([HEAD_SCORES.roll(i) for i in range(n_layers)],
                             [torch.rand(N_NEURONS, generator=g) for _ in range(n_layers)])


def _masked_reference(model, scores: structured.Scores, keep_neurons: float):
    """A copy of ``model`` whose heads and neurons that pruning drops are zero-masked in the
    attention-output and FFN-out weights (the same function, computed densely)."""
    ref = copy.deepcopy(model)
    s = structured.structure(ref)
    k = max(1, round(keep_neurons * N_NEURONS))
    for layer, h, n in zip(families.layers(ref), scores.heads, scores.neurons, strict=True):
        dropped_heads = h.argsort()[: N_HEADS // 2]
        out = layer.get_submodule(s.attention_out).weight.data  # (hidden, H * d)
        out.view(out.shape[0], N_HEADS, HEAD_SIZE)[:, dropped_heads] = 0
        layer.get_submodule(s.ffn_out).weight.data[:, n.argsort()[: N_NEURONS - k]] = 0
    return ref


@structured_types
def test_pruned_model_equals_the_zero_masked_original(model_type):
    model = _model(model_type)
    types = model_type in ("bert", "electra")
    feeds = _inputs(batch=3, seq=9, types=types)
    scores = _scores()
    reference = _logits(_masked_reference(model, scores, 0.3), feeds)
    spec = structured.prune(model, 0.5, 0.3, scores)
    assert spec == {"heads": [2, 2], "intermediate": [11, 11]}
    assert model.config.distillery_pruned == spec
    s = structured.structure(model)
    for layer in families.layers(model):
        assert [layer.get_submodule(q).weight.shape for q in s.qkv] == [(16, 32)] * 3
        assert layer.get_submodule(s.attention_out).weight.shape == (32, 16)
        assert layer.get_submodule(s.ffn_in).weight.shape == (11, 32)
        assert layer.get_submodule(s.ffn_out).weight.shape == (32, 11)
        assert getattr(layer.get_submodule(s.attention), s.heads_attr) == 2
    torch.testing.assert_close(_logits(model, feeds), reference, atol=1e-5, rtol=0)


def test_prune_keeps_the_best_heads_rows_in_order():
    model = _model("bert")
    query = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    structured.prune(model, 0.5, 1.0, _scores())
    attention = model.bert.encoder.layer[0].attention.self
    torch.testing.assert_close(attention.query.weight, query[8:24])  # heads 1 and 2
    assert attention.all_head_size == 16


def test_keep_everything_changes_nothing_and_keep_little_keeps_one():
    model = _model("bert")
    feeds = _inputs()
    before = _logits(model, feeds)
    structured.prune(model, 1.0, 1.0, _scores())
    assert torch.equal(_logits(model, feeds), before)
    spec = structured.prune(model, 0.01, 0.01, _scores())
    assert spec == {"heads": [1, 1], "intermediate": [1, 1]}
    assert _logits(model, feeds).isfinite().all()


def test_recovery_distils_hidden_states_from_the_unpruned_model():
    """compress.hidden_weight: the pruned model keeps the reference's widths and layers, so
    its hidden states match the unpruned model's one to one, with no projection."""
    reference = _model("bert")
    feeds = _inputs(batch=2, seq=7)
    table = np.random.default_rng(0).normal(size=(3, 3)).astype(np.float32)
    labels = torch.tensor([1, -1])
    untouched = copy.deepcopy(reference)
    fn = losses.DistillLoss(table, 0.1, 2.0, reference, untouched, hidden_weight=1.0)
    assert isinstance(fn.project, torch.nn.Identity)
    assert fn.hidden_pairs == [(0, 0), (1, 1), (2, 2)] and fn.attention_pairs == []
    out = untouched(**feeds, **fn.model_kwargs)
    logit_loss = losses.kd_loss(out.logits, torch.from_numpy(table[[2, 0]]), labels, 0.1, 2.0)
    # the same weights: the hidden term is zero
    assert fn(out, labels, [2, 0], feeds).item() == pytest.approx(logit_loss.item(), abs=1e-6)

    pruned = copy.deepcopy(reference)
    structured.prune(pruned, 0.5, 0.3, _scores())
    fn = losses.DistillLoss(table, 0.1, 2.0, reference, pruned, hidden_weight=1.0)
    out = pruned(**feeds, **fn.model_kwargs)
    got = fn(out, labels, [2, 0], feeds)
    assert got.item() > losses.kd_loss(out.logits, torch.from_numpy(table[[2, 0]]), labels,
                                         0.1, 2.0).item() + 1e-4
    got.backward()
    assert all(p.grad is not None for p in pruned.bert.encoder.parameters())
    assert not any(p.grad is not None for p in reference.parameters())


def test_prune_rejects_bad_fractions_and_scores_of_another_shape():
    model = _model("bert")
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"keep_heads: got .* \(0, 1\]"):
            structured.prune(model, bad, 0.5, _scores())
    with pytest.raises(ValueError, match="scores do not match"):
        structured.prune(model, 0.5, 0.5, _scores(n_layers=1))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    return BertTokenizerFast(vocab=str(vocab), do_lower_case=True)


@structured_types
def test_importance_is_finite_nonnegative_and_ranks_a_silenced_head_last(model_type, tokenizer):
    model = _model(model_type)
    s = structured.structure(model)
    layer0, layer1 = families.layers(model)
    out = layer0.get_submodule(s.attention_out).weight.data
    out.view(out.shape[0], N_HEADS, HEAD_SIZE)[:, 2] = 0  # head 2 of layer 0 says nothing
    layer1.get_submodule(s.ffn_out).weight.data[:, 5] = 0  # nor neuron 5 of layer 1
    model.get_input_embeddings().weight.requires_grad_(False)  # as in recovery
    model.train()
    split = make_sentences(40, seed=4)
    split.labels[:10] = [-1] * 10  # unlabelled examples are skipped
    scores = structured.importance(model, split, tokenizer, 16, batch_size=8, n_batches=3)
    heads, neurons = torch.stack(scores.heads), torch.stack(scores.neurons)
    assert heads.shape == (2, N_HEADS) and neurons.shape == (2, N_NEURONS)
    for t in (heads, neurons):
        assert t.isfinite().all() and (t >= 0).all()
    assert heads[0].argmin() == 2 and heads[0, 2] == 0 and (heads[0, [0, 1, 3]] > 0).all()
    assert neurons[1].argmin() == 5 and neurons[1, 5] == 0
    assert model.training and not model.get_input_embeddings().weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_importance_needs_labels(tokenizer):
    split = Split(["good film", "bad film"], [-1, -1])
    with pytest.raises(ValueError, match="labelled"):
        structured.importance(_model("bert"), split, tokenizer, 16)


@structured_types
def test_save_and_load_classifier_round_trip(model_type, tmp_path):
    model = _model(model_type)
    structured.prune(model, 0.5, 0.3, _scores())
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = loading.load_classifier(str(tmp_path))
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config.distillery_pruned == {"heads": [2, 2], "intermediate": [11, 11]}
    assert loading.count_params(loaded) == loading.count_params(model)
    feeds = _inputs(batch=4, seq=7, seed=2)
    assert torch.equal(_logits(loaded, feeds), _logits(model, feeds))


def test_load_refuses_other_labels_and_a_spec_that_does_not_fit(tmp_path):
    model = _model("bert")
    structured.prune(model, 0.5, 0.5, _scores())
    model.save_pretrained(tmp_path, safe_serialization=True)
    with pytest.raises(ValueError, match="cannot take other labels"):
        loading.load_classifier(str(tmp_path), ["x", "y"])
    with pytest.raises(ValueError, match="does not fit"):
        structured.reshape(_model("bert"), {"heads": [2], "intermediate": [11, 11]})
    with pytest.raises(ValueError, match="does not fit"):
        structured.reshape(_model("bert"), {"heads": [2, 5], "intermediate": [11, 11]})


# ONNX export of every family is tested in test_families; here the two layer layouts pruning
# knows (BERT-like, shared by roberta / xlm-roberta / electra, and DistilBERT's).
@pytest.mark.parametrize("model_type", ["bert", "distilbert"])
def test_pruned_model_exports_to_onnx_with_torch_logits(model_type, tmp_path):
    model = _model(model_type)
    structured.prune(model, 0.5, 0.5, _scores())
    types = model_type in ("bert", "electra")
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if types else [])
    path = tmp_path / "pruned.onnx"
    onnx_export.export(model, path, opset=18, input_names=names)
    session = bench.ort_session(str(path), "cpu")
    feeds = _inputs(batch=4, seq=11, seed=5, types=types)
    (got,) = session.run(["logits"], {k: v.numpy() for k, v in feeds.items()})
    np.testing.assert_allclose(got, _logits(model, feeds).numpy(), atol=1e-4, rtol=0)


def test_deberta_v2_is_a_clear_error(tokenizer):
    model = _model("deberta-v2")
    message = (r"structured pruning is not supported for deberta-v2; supported: bert, "
               r"distilbert, electra, roberta, xlm-roberta")
    with pytest.raises(ValueError, match=message):
        pruning.METHODS["structured"].check(model)
    with pytest.raises(ValueError, match=message):
        structured.importance(model, make_sentences(8, seed=0), tokenizer, 16)
    with pytest.raises(ValueError, match=message):
        structured.prune(model, 0.5, 0.5, _scores())


def test_a_student_of_a_pruned_teacher_is_not_pruned():
    teacher = _model("bert")
    structured.prune(teacher, 0.5, 0.5, _scores())
    cfg = families.student_config(teacher.config, families.genome_of(_model("bert").config))
    assert not hasattr(cfg, "distillery_pruned")
