"""Tests of ``distillery.modeling.training``: the shared AdamW loop and its step budget."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import BertForSequenceClassification

from distillery.data.prepared import Split
from distillery.modeling import training
from distillery.modeling.training import TrainConfig
from tests.conftest import make_sentences, tiny_config


def test_loss_decreases_on_learnable_data(tiny_model, tiny_tokenizer):
    cfg = TrainConfig(lr=3e-3, batch_size=16, max_length=32, steps=60)
    losses = training.train(tiny_model, make_sentences(64, seed=0), tiny_tokenizer, cfg, desc=None)
    assert len(losses) == 60
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first == pytest.approx(math.log(2), abs=0.05)  # a random head starts at chance
    assert last < 0.3
    assert not tiny_model.training  # left in eval mode


@pytest.mark.parametrize(
    ("kwargs", "n_examples", "expected"),
    [
        ({"steps": 7}, 1000, 7),           # explicit steps win over epochs
        ({"epochs": 1.0}, 100, 4),         # ceil(100 / 32)
        ({"epochs": 2.0}, 64, 4),
        ({"epochs": 0.5}, 100, 2),         # ceil(1.5625)
        ({"epochs": 0.01}, 10, 1),         # at least one step
        ({"epochs": 3.0}, 0, 1),
    ],
)
def test_total_steps(kwargs, n_examples, expected):
    cfg = TrainConfig(lr=1e-3, batch_size=32, max_length=16, **kwargs)
    assert cfg.total_steps(n_examples) == expected


def test_no_trainable_parameters_is_an_error(tiny_model, tiny_tokenizer):
    tiny_model.requires_grad_(False)
    cfg = TrainConfig(lr=1e-3, batch_size=4, max_length=16, steps=1)
    with pytest.raises(ValueError, match="no trainable parameters"):
        training.train(tiny_model, make_sentences(8, 0), tiny_tokenizer, cfg, desc=None)


def test_frozen_parameters_do_not_move(tiny_model, tiny_tokenizer):
    emb = tiny_model.bert.embeddings.word_embeddings.weight
    emb.requires_grad_(False)
    before = emb.detach().clone()
    head_before = tiny_model.classifier.weight.detach().clone()
    cfg = TrainConfig(lr=1e-2, batch_size=4, max_length=16, steps=3)
    training.train(tiny_model, make_sentences(8, 0), tiny_tokenizer, cfg, desc=None)
    assert torch.equal(emb, before)
    assert not torch.equal(tiny_model.classifier.weight, head_before)


def test_loss_fn_sees_every_example_once_per_epoch_reshuffled(tiny_model, tiny_tokenizer):
    split = make_sentences(10, seed=0)
    seen: list[list[int]] = []

    def loss_fn(outputs, labels, idx, enc):
        assert outputs.logits.shape == (len(idx), 2)
        assert enc["input_ids"].shape[0] == len(idx)
        assert labels.tolist() == [split.labels[i] for i in idx]
        seen.append(list(idx))
        return training.cross_entropy(outputs, labels, idx, enc)

    cfg = TrainConfig(lr=1e-3, batch_size=4, max_length=32, epochs=2.0)  # 2 epochs of 3 batches
    losses = training.train(tiny_model, split, tiny_tokenizer, cfg, loss_fn=loss_fn, desc=None)
    assert len(losses) == len(seen) == 5  # ceil(2 * 10 / 4) steps: the second epoch is cut short
    epoch0 = [i for idx in seen[:3] for i in idx]
    epoch1 = [i for idx in seen[3:] for i in idx]
    assert sorted(epoch0) == list(range(10))
    assert epoch1 != epoch0[: len(epoch1)]  # reshuffled with a new seed


def test_training_is_repeatable_for_a_seed(tiny_tokenizer):
    def run():
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_config())
        cfg = TrainConfig(lr=1e-3, batch_size=8, max_length=32, steps=4, seed=3)
        return training.train(model, make_sentences(16, 0), tiny_tokenizer, cfg, desc=None)

    assert run() == run()


def test_cross_entropy_of_uniform_logits_is_log_2():
    outputs = SimpleNamespace(logits=torch.zeros(3, 2))
    loss = training.cross_entropy(outputs, torch.tensor([0, 1, 1]), [0, 1, 2], {})
    assert loss.item() == pytest.approx(math.log(2))


def test_empty_split_is_an_error_not_a_hang(tiny_model, tiny_tokenizer, monkeypatch):
    calls = []
    real_batches = training.batches

    def guarded(*args, **kwargs):  # stops the endless loop after a few empty epochs
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("train() kept asking for epochs of an empty split")
        return real_batches(*args, **kwargs)

    monkeypatch.setattr(training, "batches", guarded)
    cfg = TrainConfig(lr=1e-3, batch_size=4, max_length=16, steps=2)
    with pytest.raises(ValueError):
        training.train(tiny_model, Split([], []), tiny_tokenizer, cfg, desc=None)


def test_step_hook_sees_every_step_and_loss_parameters_train(tiny_model, tiny_tokenizer):
    """A loss with parameters (a learned projection) is optimised with the model, and
    ``on_step`` is called once per step with that step's loss."""

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.model_kwargs = {"output_hidden_states": True}

        def forward(self, outputs, labels, idx, enc):
            assert outputs.hidden_states is not None
            return training.cross_entropy(outputs, labels, idx, enc) * self.scale

    loss_fn, calls = Scaled(), []
    cfg = TrainConfig(lr=1e-2, batch_size=4, max_length=16, steps=3)
    losses = training.train(tiny_model, make_sentences(8, 0), tiny_tokenizer, cfg, loss_fn,
                            desc=None, on_step=lambda s, v, m: calls.append((s, v, m.training)))
    assert [c[0] for c in calls] == [1, 2, 3] and [c[1] for c in calls] == losses
    assert all(c[2] for c in calls)  # the model is in training mode while it trains
    assert loss_fn.scale.item() != 1.0


@pytest.mark.gpu
def test_training_and_inference_follow_the_model_to_cuda(tiny_model, tiny_tokenizer):
    """The one training loop and inference on a GPU: batches follow the model, autocast runs
    the forward in bf16 / fp16, KD targets move with the logits."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    from distillery.core.device import resolve_device
    from distillery.distill import losses
    from distillery.measure import evaluate

    split = make_sentences(24, seed=4)
    cpu = evaluate.predict_logits(tiny_model, split, tiny_tokenizer, 16)
    model = tiny_model.to(resolve_device("cuda"))
    np.testing.assert_allclose(evaluate.predict_logits(model, split, tiny_tokenizer, 16), cpu,
                               atol=0.05)
    loss = losses.kd_loss_fn(cpu, 0.5, 2.0)
    cfg = training.TrainConfig(lr=1e-3, batch_size=8, max_length=16, steps=3)
    step_losses = training.train(model, split, tiny_tokenizer, cfg, loss, desc=None)
    assert len(step_losses) == 3 and all(np.isfinite(step_losses))
