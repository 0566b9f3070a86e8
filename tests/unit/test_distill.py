"""Tests of ``distillery.distill``: the KD loss against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distillery import distill

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
    terms = []
    for s, te, y in zip(STUDENT, TEACHER, labels, strict=True):
        kl = t * t * _kl(te, s, t)
        terms.append(kl if y < 0 else alpha * _ce(s, y) + (1 - alpha) * kl)
    return sum(terms) / len(terms)


def _loss(labels, alpha, t):
    return distill.kd_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(labels),
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
    assert _loss([-1, -1, -1], alpha, t) == pytest.approx(only_kl, rel=1e-5)


def test_alpha_one_is_plain_cross_entropy():
    ce = sum(_ce(s, y) for s, y in zip(STUDENT, [1, 2, 0], strict=True)) / 3
    assert _loss([1, 2, 0], 1.0, 3.0) == pytest.approx(ce, rel=1e-5)


def test_matching_the_teacher_costs_nothing_without_labels():
    logits = torch.tensor(TEACHER)
    loss = distill.kd_loss(logits, logits, torch.tensor([-1, -1, -1]), 0.5, 2.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_backpropagates_to_the_student():
    student = torch.tensor(STUDENT, requires_grad=True)
    distill.kd_loss(student, torch.tensor(TEACHER), torch.tensor([1, -1, 0]), 0.5, 2.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_kd_loss_fn_looks_up_teacher_logits_by_index():
    table = np.array([[9.0, -9.0, 0.0], TEACHER[0], [0.0, 0.0, 9.0], TEACHER[1], TEACHER[2]],
                     dtype=np.float32)
    fn = distill.kd_loss_fn(table, alpha=0.5, temperature=2.0)
    labels = torch.tensor([1, -1, 0])
    got = fn(torch.tensor(STUDENT), labels, [1, 3, 4]).item()
    assert got == pytest.approx(_expected([1, -1, 0], 0.5, 2.0), rel=1e-5)
    assert fn(torch.tensor(STUDENT), labels, [0, 1, 2]).item() != pytest.approx(got)
