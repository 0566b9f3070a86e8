"""Tests of ``distillery.measure.evaluate``: accuracy, and logits returned in the split's order."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from distillery.measure import evaluate
from tests.conftest import POSITIVE, make_sentences


@pytest.mark.parametrize(
    ("logits", "labels", "expected"),
    [
        ([[1, 0], [0, 1]], [0, 1], 1.0),
        ([[1, 0], [0, 1]], [1, 0], 0.0),
        ([[0.2, 0.8], [0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], [1, 0, 0, 0], 0.75),
        ([[0.1, 0.5, 0.4], [2, 1, 0], [0, 0, 3]], [1, 2, 2], 2 / 3),
        ([[-1.0, -2.0]], np.array([0]), 1.0),
    ],
    ids=["all-right", "all-wrong", "three-of-four", "three-classes", "numpy-labels"],
)
def test_accuracy_hand_cases(logits, labels, expected):
    assert evaluate.accuracy(np.array(logits, dtype=np.float32), labels) == pytest.approx(expected)


def test_accuracy_length_mismatch():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        evaluate.accuracy(np.zeros((3, 2)), [0, 1])


@pytest.fixture(scope="module")
def varied():
    split = make_sentences(13, seed=6)
    by_length = sorted(range(13), key=lambda i: len(split.texts[i]))
    assert by_length != list(range(13))  # predict_logits really has to restore the order
    return split


def test_predict_logits_rows_in_split_order(tiny_model, tiny_tokenizer, varied):
    tiny_model.eval()
    with torch.no_grad():
        expected = np.stack([
            tiny_model(**tiny_tokenizer(s, return_tensors="pt", return_token_type_ids=False))
            .logits[0].numpy()
            for s in varied.texts
        ])
    got = evaluate.predict_logits(tiny_model, varied, tiny_tokenizer, max_length=64, batch_size=4)
    assert got.shape == (13, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_logits_sets_eval_mode(tiny_model, tiny_tokenizer, varied):
    tiny_model.train()  # dropout on would make two calls differ
    a = evaluate.predict_logits(tiny_model, varied, tiny_tokenizer, 64)
    b = evaluate.predict_logits(tiny_model, varied, tiny_tokenizer, 64)
    assert not tiny_model.training
    np.testing.assert_array_equal(a, b)


class PolarityModel(torch.nn.Module):
    """A stand-in classifier: logit 1 for 'positive' iff a positive word id is present."""

    def __init__(self, positive_ids: list[int]) -> None:
        super().__init__()
        self.positive = torch.tensor(positive_ids)
        self.config = types.SimpleNamespace(num_labels=2)

    def forward(self, input_ids, attention_mask):
        hit = (torch.isin(input_ids, self.positive) & attention_mask.bool()).any(1).float()
        return types.SimpleNamespace(logits=torch.stack([1 - hit, hit], dim=1))  # (B, 2)


def test_evaluate_accuracy_of_a_known_model(tiny_tokenizer):
    split = make_sentences(20, seed=7)
    ids = tiny_tokenizer.convert_tokens_to_ids(POSITIVE)
    assert evaluate.evaluate(PolarityModel(ids), split, tiny_tokenizer, 64) == 1.0
    flipped = type(split)(split.texts, [1 - y for y in split.labels])
    assert evaluate.evaluate(PolarityModel(ids), flipped, tiny_tokenizer, 64) == 0.0


class FakeSession:
    """Mimics ``onnxruntime.InferenceSession.run``: logits = (number of tokens, first id)."""

    def __init__(self) -> None:
        self.feeds: list[dict[str, np.ndarray]] = []

    def get_inputs(self):
        return [types.SimpleNamespace(name=n) for n in ("input_ids", "attention_mask")]

    def run(self, outputs, feeds):
        assert outputs == ["logits"]
        assert set(feeds) == {"input_ids", "attention_mask"}
        assert all(v.dtype == np.int64 for v in feeds.values())
        self.feeds.append(feeds)
        mask = feeds["attention_mask"]
        return [np.stack([mask.sum(1), feeds["input_ids"][:, 1]], axis=1).astype(np.float32)]


def test_onnx_logits_rows_in_split_order(tiny_tokenizer, varied):
    session = FakeSession()
    got = evaluate.onnx_logits(session, varied, tiny_tokenizer, max_length=64, batch_size=4)
    assert len(session.feeds) == 4  # ceil(13 / 4) batches
    for row, sentence in zip(got, varied.texts, strict=True):
        ids = tiny_tokenizer(sentence)["input_ids"]
        assert row.tolist() == [len(ids), ids[1]]


# --------------------------------------------------------------------------- metrics

# 3 classes; predictions (argmax) = [0, 0, 1, 2, 2, 2] for labels [0, 1, 1, 2, 2, 0]
LOGITS = np.eye(3, dtype=np.float32)[[0, 0, 1, 2, 2, 2]]
LABELS = [0, 1, 1, 2, 2, 0]


def test_macro_f1_hand_computation():
    # class 0: tp 1, fp 1, fn 1 -> F1 0.5; class 1: tp 1, fp 0, fn 1 -> P 1, R 0.5, F1 2/3;
    # class 2: tp 2, fp 1, fn 0 -> P 2/3, R 1, F1 0.8
    assert evaluate.macro_f1(LOGITS, LABELS) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert evaluate.accuracy(LOGITS, LABELS) == pytest.approx(4 / 6)
    assert evaluate.scores(LOGITS, LABELS) == {
        "accuracy": pytest.approx(4 / 6), "macro_f1": pytest.approx((0.5 + 2 / 3 + 0.8) / 3)}


def test_macro_f1_counts_a_never_predicted_class_as_zero():
    logits = np.eye(3, dtype=np.float32)[[0, 0, 1]]
    assert evaluate.macro_f1(logits, [0, 0, 2]) == pytest.approx((1 + 0 + 0) / 3)


def test_score_picks_the_task_metric():
    assert evaluate.score(LOGITS, LABELS, "accuracy") == evaluate.accuracy(LOGITS, LABELS)
    assert evaluate.score(LOGITS, LABELS, "macro_f1") == evaluate.macro_f1(LOGITS, LABELS)
    with pytest.raises(ValueError, match="task.metric"):
        evaluate.score(LOGITS, LABELS, "f1")


def test_per_class_is_keyed_by_label_name():
    out = evaluate.per_class(LOGITS, LABELS, ["a", "b", "c"])
    assert list(out) == ["a", "b", "c"]
    assert out["b"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(0.6667, abs=1e-4),
                        "support": 2}
    assert out["c"]["precision"] == pytest.approx(0.6667, abs=1e-4)
    with pytest.raises(ValueError, match="2 label names for 3 classes"):
        evaluate.per_class(LOGITS, LABELS, ["a", "b"])


def test_confusion_rows_name_actual_and_predicted():
    rows = evaluate.confusion_rows(LOGITS, LABELS, ["a", "b", "c"])
    assert rows[1] == {"actual": "b", "predicted": "a"}
    assert rows[5] == {"actual": "a", "predicted": "c"}
    assert len(rows) == 6


def test_unlabelled_examples_cannot_be_scored():
    with pytest.raises(ValueError, match="unlabelled"):
        evaluate.accuracy(LOGITS, [0, 1, 1, 2, 2, -1])
