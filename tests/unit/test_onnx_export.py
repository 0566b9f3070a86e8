"""Tests of ``distillery.export.onnx_export``: a self-contained file with dynamic batch and sequence
axes whose ONNX Runtime logits match torch, and the validation helpers."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch

from distillery.export import onnx_export
from distillery.export.onnx_export import Validation
from distillery.measure import bench


def _random_inputs(batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 53, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    for row in range(1, batch):  # right padding of various lengths, like a real batch
        mask[row, max(1, seq - 2 * row):] = 0
    return {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}


def _torch_logits(model, feeds) -> np.ndarray:
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()


def test_export_is_one_file_with_the_logits_interface(tiny_onnx):
    _, path = tiny_onnx
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no external data, no temp
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in model.graph.output] == ["logits"]
    for graph_input in model.graph.input:  # batch and sequence are symbolic
        dims = graph_input.type.tensor_type.shape.dim
        assert len(dims) == 2 and all(d.dim_param and not d.dim_value for d in dims)


@pytest.mark.parametrize(("batch", "seq"), [(1, 5), (3, 11), (7, 20)])
def test_onnx_runtime_matches_torch_at_other_shapes(tiny_onnx, batch, seq):
    model, path = tiny_onnx
    session = bench.ort_session(str(path), "cpu")
    feeds = _random_inputs(batch, seq, seed=batch)
    (got,) = session.run(["logits"], feeds)
    assert got.shape == (batch, 2)  # the export example was (2, 8)
    np.testing.assert_allclose(got, _torch_logits(model, feeds), atol=1e-4, rtol=0)


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_both_exporters_match_torch_and_leave_the_model_in_eval_mode(exporter, tmp_path):
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_config

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(initializer_range=0.2)).eval()
    feeds = _random_inputs(3, 11, seed=3)
    before = _torch_logits(model, feeds)
    onnx_export.export(model, tmp_path / "m.onnx", opset=18, exporter=exporter)
    assert not model.training  # the TorchScript exporter restores the wrapper's mode
    np.testing.assert_array_equal(_torch_logits(model, feeds), before)
    (got,) = bench.ort_session(str(tmp_path / "m.onnx"), "cpu").run(["logits"], feeds)
    np.testing.assert_allclose(got, before, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="exporter must be one of torchscript, dynamo, got 'jit'"):
        onnx_export.export(model, tmp_path / "x.onnx", opset=18, exporter="jit")


def test_export_failure_leaves_no_file(tmp_path):
    class Broken(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            raise RuntimeError("cannot trace me")

    with pytest.raises(Exception, match="cannot trace me"):
        onnx_export.export(Broken(), tmp_path / "broken.onnx", opset=18)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("reference", "candidate", "max_abs_diff", "agreement", "logit_range"),
    [
        ([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], 0.0, 1.0, 1.0),
        ([[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.0], [0.0, 1.25]], 0.5, 1.0, 1.0),
        ([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0], [0.0, 3.0]],
         [[0.0, 1.0], [0.0, 1.0], [2.0, -0.5], [0.0, 3.0]], 1.0, 0.75, 4.0),
    ],
    ids=["identical", "close", "one-flip"],
)
def test_compare_hand_cases(reference, candidate, max_abs_diff, agreement, logit_range):
    v = onnx_export.compare(np.array(reference), np.array(candidate))
    assert v == Validation(max_abs_diff=pytest.approx(max_abs_diff), agreement=agreement,
                           logit_range=logit_range)
    assert v.rel_diff == pytest.approx(max_abs_diff / logit_range)


def test_compare_shape_mismatch():
    with pytest.raises(ValueError, match=r"shape mismatch: \(3, 2\) vs \(2, 2\)"):
        onnx_export.compare(np.zeros((3, 2)), np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("validation", "expected"),
    [
        (Validation(1e-5, 1.0), []),
        (Validation(1e-3, 0.99), []),  # limits are inclusive
        (Validation(0.25, 1.0), ["int8: max |Δlogit| 0.25 > allowed 0.001"]),
        (Validation(1e-5, 0.5), ["int8: argmax agreement 0.5000 < required 0.99"]),
        (Validation(2.0, 0.125), ["int8: max |Δlogit| 2 > allowed 0.001",
                                  "int8: argmax agreement 0.1250 < required 0.99"]),
        (Validation(math.nan, 1.0), ["int8: max |Δlogit| nan > allowed 0.001"]),
    ],
    ids=["ok", "at-the-limits", "diff", "agreement", "both", "nan"],
)
def test_validation_problems(validation, expected):
    assert validation.problems("int8", max_abs_diff=1e-3, min_agreement=0.99) == expected


@pytest.mark.parametrize(
    ("validation", "expected"),
    [
        (Validation(2.0, 1.0, logit_range=5.0), []),       # 0.4 of the range: inclusive
        (Validation(2.0, 1.0, logit_range=20.0), []),      # same noise, wider 20-class logits
        (Validation(2.0, 1.0, logit_range=4.0),
         ["int8: max |Δlogit| 2 is 0.5 of the logits' range 4 > allowed 0.4"]),
        (Validation(0.1, 1.0, logit_range=0.0),            # constant logits: nothing to scale by
         ["int8: max |Δlogit| 0.1 is inf of the logits' range 0 > allowed 0.4"]),
        (Validation(math.nan, 1.0, logit_range=5.0),
         ["int8: max |Δlogit| nan is nan of the logits' range 5 > allowed 0.4"]),
    ],
    ids=["at-the-limit", "wide-logits", "past", "constant", "nan"],
)
def test_validation_relative_tolerance(validation, expected):
    """int8 and fp16 files are gated on |Δlogit| relative to the reference logits' range."""
    assert validation.problems("int8", min_agreement=0.9, max_rel_diff=0.4) == expected
