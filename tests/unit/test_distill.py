"""Tests of ``distillery.distill.losses``: the KD loss against a hand computation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from distillery.distill import losses

STUDENT = [[1.0, 2.0, 0.5], [0.0, -1.0, 1.5], [0.3, 0.3, -2.0]]
TEACHER = [[2.0, 0.0, 1.0], [0.5, 0.5, -0.5], [-1.0, 3.0, 0.0]]


def _softmax(row, t):
    exps = [math.exp(x / t) for x in row]
    return [e / sum(exps) for e in exps]


def _kl(teacher_row, student_row, t):
    """KL(softmax(teacher/T) || softmax(student/T)), by hand."""
    p, q = _softmax(teacher_row, t), _softmax(student_row, t)
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True))


def _ce(student_row, label):
    return -math.log(_softmax(student_row, 1.0)[label])


def _expected(labels, alpha, t):
    """alpha * mean CE over labelled rows + (1 - alpha) * mean T^2 KL over all rows."""
    kl = [t * t * _kl(te, s, t) for s, te in zip(STUDENT, TEACHER, strict=True)]
    ce = [_ce(s, y) for s, y in zip(STUDENT, labels, strict=True) if y >= 0]
    return alpha * (sum(ce) / len(ce) if ce else 0.0) + (1 - alpha) * sum(kl) / len(kl)


def _loss(labels, alpha, t):
    return losses.kd_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(labels),
                           alpha, t).item()


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize(
    "labels", [[1, 2, 0], [-1, 2, -1], [-1, -1, -1]], ids=["labelled", "mixed", "unlabelled"]
)
def test_kd_loss_equals_hand_computation(alpha, temperature, labels):
    assert _loss(labels, alpha, temperature) == pytest.approx(
        _expected(labels, alpha, temperature), rel=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_unlabelled_rows_get_only_the_scaled_kl(alpha):
    t = 2.0
    only_kl = sum(t * t * _kl(te, s, t) for s, te in zip(STUDENT, TEACHER, strict=True)) / 3
    assert _loss([-1, -1, -1], alpha, t) == pytest.approx((1 - alpha) * only_kl, rel=1e-5)


@pytest.mark.parametrize("labels", [[1, 2, 0], [1, -1, -1]], ids=["labelled", "mixed"])
def test_alpha_one_is_plain_cross_entropy_on_the_labelled_rows(labels):
    ce = [_ce(s, y) for s, y in zip(STUDENT, labels, strict=True) if y >= 0]
    assert _loss(labels, 1.0, 3.0) == pytest.approx(sum(ce) / len(ce), rel=1e-5)


def test_alpha_is_the_hard_label_share_whatever_the_labelled_fraction():
    """The CE term is a mean over labelled rows: one labelled row in three weighs as much as
    three (the old per-row weighting gave hard labels alpha / 3 of the loss here)."""
    t, alpha = 2.0, 0.3
    kl = sum(t * t * _kl(te, s, t) for s, te in zip(STUDENT, TEACHER, strict=True)) / 3
    got = _loss([1, -1, -1], alpha, t)
    assert got == pytest.approx(alpha * _ce(STUDENT[0], 1) + (1 - alpha) * kl, rel=1e-5)


def test_alpha_one_without_labels_gives_a_zero_loss_that_backpropagates():
    student = torch.tensor(STUDENT, requires_grad=True)
    loss = losses.kd_loss(student, torch.tensor(TEACHER), torch.tensor([-1, -1, -1]), 1.0, 2.0)
    loss.backward()
    assert loss.item() == 0.0 and student.grad is not None


def test_matching_the_teacher_costs_nothing_without_labels():
    logits = torch.tensor(TEACHER)
    loss = losses.kd_loss(logits, logits, torch.tensor([-1, -1, -1]), 0.5, 2.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_backpropagates_to_the_student():
    student = torch.tensor(STUDENT, requires_grad=True)
    losses.kd_loss(student, torch.tensor(TEACHER), torch.tensor([1, -1, 0]), 0.5, 2.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_kd_loss_fn_looks_up_teacher_logits_by_index():
    table = np.array([[9.0, -9.0, 0.0], TEACHER[0], [0.0, 0.0, 9.0], TEACHER[1], TEACHER[2]],
                     dtype=np.float32)
    fn = losses.kd_loss_fn(table, alpha=0.5, temperature=2.0)
    labels = torch.tensor([1, -1, 0])
    out = SimpleNamespace(logits=torch.tensor(STUDENT))
    got = fn(out, labels, [1, 3, 4], {}).item()
    assert got == pytest.approx(_expected([1, -1, 0], 0.5, 2.0), rel=1e-5)
    assert fn(out, labels, [0, 1, 2], {}).item() != pytest.approx(got)
    assert fn.model_kwargs == {} and not list(fn.parameters())  # logits only: no teacher pass


# Layer-wise (TinyBERT) terms against hand computations.

def test_hidden_mse_equals_hand_computation_with_padding_left_out():
    g = torch.Generator().manual_seed(0)
    s_h = tuple(torch.randn(2, 3, 4, generator=g) for _ in range(3))  # (B, T, d_s)
    t_h = tuple(torch.randn(2, 3, 6, generator=g) for _ in range(5))  # (B, T, d_t)
    proj = torch.nn.Linear(4, 6)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    pairs = [(0, 0), (1, 2), (2, 4)]
    expected = 0.0
    for i, j in pairs:
        sq = [((proj(s_h[i][b, k]) - t_h[j][b, k]) ** 2).mean().item()
              for b in range(2) for k in range(3) if mask[b, k]]
        expected += sum(sq) / len(sq)
    got = losses.hidden_mse(s_h, t_h, pairs, proj, mask).item()
    assert got == pytest.approx(expected / len(pairs), rel=1e-5)


def test_attention_kl_equals_hand_computation():
    g = torch.Generator().manual_seed(1)
    s_a = tuple(torch.randn(1, 2, 3, 3, generator=g).softmax(-1) for _ in range(2))
    t_a = tuple(torch.randn(1, 2, 3, 3, generator=g).softmax(-1) for _ in range(4))
    mask = torch.tensor([[1, 1, 0]])
    pairs = [(0, 1), (1, 3)]
    expected = 0.0
    for i, j in pairs:
        kls = [sum(t_a[j][0, h, q, k].item() * math.log(t_a[j][0, h, q, k].item()
                                                         / s_a[i][0, h, q, k].item())
                   for k in range(3))
               for h in range(2) for q in range(3) if mask[0, q]]
        expected += sum(kls) / len(kls)
    got = losses.attention_kl(s_a, t_a, pairs, mask).item()
    assert got == pytest.approx(expected / len(pairs), rel=1e-5)
    assert losses.attention_kl(t_a[1:2], t_a[1:2], [(0, 0)], mask).item() == pytest.approx(
        0.0, abs=1e-6)


def _bert(layers, hidden, heads):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=2 * hidden, max_position_embeddings=16, num_labels=3))


def test_layerwise_loss_adds_the_weighted_terms_to_the_logit_loss():
    teacher, student = _bert(4, 16, 2).eval(), _bert(2, 8, 2).eval()
    enc = {"input_ids": torch.randint(0, 50, (2, 5)),
           "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}
    labels = torch.tensor([1, -1])
    table = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    fn = losses.DistillLoss(table, 0.3, 2.0, teacher, student, hidden_weight=2.0,
                             attention_weight=0.5)
    assert fn.model_kwargs == {"output_hidden_states": True, "output_attentions": True}
    assert isinstance(fn.project, torch.nn.Linear)  # widths 8 -> 16 differ
    assert fn.hidden_pairs == [(0, 0), (1, 2), (2, 4)] and fn.attention_pairs == [(0, 1), (1, 3)]
    out = student(**enc, **fn.model_kwargs)
    t_out = teacher(**enc, **fn.model_kwargs)
    expected = (losses.kd_loss(out.logits, torch.from_numpy(table[[3, 0]]), labels, 0.3, 2.0)
                + 2.0 * losses.hidden_mse(out.hidden_states, t_out.hidden_states,
                                           fn.hidden_pairs, fn.project, enc["attention_mask"])
                + 0.5 * losses.attention_kl(out.attentions, t_out.attentions,
                                             fn.attention_pairs, enc["attention_mask"]))
    got = fn(out, labels, [3, 0], enc)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    got.backward()
    assert fn.project.weight.grad is not None  # the projection learns with the student
    assert not any(p.grad is not None for p in teacher.parameters())


def test_attention_kd_is_skipped_when_head_counts_differ():
    teacher, student = _bert(2, 16, 4), _bert(1, 16, 2)
    fn = losses.DistillLoss(np.zeros((1, 3), np.float32), 0.5, 2.0, teacher, student,
                             hidden_weight=0.0, attention_weight=1.0)
    assert fn.attention_pairs == [] and "output_attentions" not in fn.model_kwargs


def test_layer_wise_kd_needs_a_student_made_of_teacher_layers(caplog):
    assert losses.layer_wise_weights(0.5, 0.25, "teacher") == (0.5, 0.25)
    assert losses.layer_wise_weights(0.0, 0.0, "random") == (0.0, 0.0) and not caplog.records
    with caplog.at_level("WARNING"):
        assert losses.layer_wise_weights(0.5, 0.0, "pretrained") == (0.0, 0.0)
    assert "distill.student_init: teacher" in caplog.text and "'pretrained'" in caplog.text
