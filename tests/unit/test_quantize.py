"""Tests of ``distillery.quantize``: dynamic int8 quantisation of an exported ONNX file."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from distillery import bench, evaluate, onnx_export, quantize
from tests.conftest import make_sentences


@pytest.fixture(scope="module")
def int8(tiny_onnx, tmp_path_factory):
    _, src = tiny_onnx
    before = src.read_bytes()
    dst = tmp_path_factory.mktemp("int8") / "sub" / "tiny.int8.onnx"
    quantize.dynamic_int8(src, dst)
    assert src.read_bytes() == before  # the source is left alone
    return dst


def test_int8_file_is_smaller_and_quantised(tiny_onnx, int8):
    _, src = tiny_onnx
    assert int8.stat().st_size < src.stat().st_size
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert [p.name for p in int8.parent.iterdir()] == [int8.name]  # no temp debris


def test_int8_runs_and_mostly_agrees_with_torch(tiny_onnx, int8, tiny_tokenizer):
    model, _ = tiny_onnx
    split = make_sentences(64, seed=8)
    reference = evaluate.predict_logits(model, split, tiny_tokenizer, max_length=32)
    session = bench.ort_session(str(int8), "cpu")
    got = evaluate.onnx_logits(session, split, tiny_tokenizer, max_length=32, batch_size=16)
    v = onnx_export.compare(reference, got)
    assert v.agreement >= 0.9
    spread = np.abs(reference[:, 0] - reference[:, 1]).mean()
    assert 0 < v.max_abs_diff < spread  # quantisation noise, smaller than the logit gap


def test_quantising_a_missing_file_fails(tmp_path):
    with pytest.raises(FileNotFoundError):
        quantize.dynamic_int8(tmp_path / "missing.onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_int8_batch_shapes_are_still_dynamic(int8):
    session = bench.ort_session(str(int8), "cpu")
    for batch, seq in ((1, 4), (5, 17)):
        ids = torch.randint(5, 53, (batch, seq)).numpy()
        (logits,) = session.run(["logits"], {"input_ids": ids,
                                             "attention_mask": np.ones_like(ids)})
        assert logits.shape == (batch, 2) and np.isfinite(logits).all()
