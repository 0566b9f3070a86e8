"""Fixtures shared by the unit tests only: one torch thread, the tiny tokenizer, a tiny ONNX file.

The shared fixtures (``tiny_teacher_dir``, ``tiny_model``, ``tiny_config``, ``make_sentences``...)
live in ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertForSequenceClassification

from distillery.export import onnx_export
from distillery.modeling import loading
from tests.conftest import tiny_config


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine several
    threads per process make every step orders of magnitude slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_teacher_dir: Path):
    """The WordPiece tokenizer of the tiny teacher, loaded the way the stages load it."""
    return loading.load_tokenizer(str(tiny_teacher_dir))


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> tuple[BertForSequenceClassification, Path]:
    """A tiny classifier (eval mode) and its fp32 ONNX export, made once per session.

    ``initializer_range=0.2`` spreads the logits (~0.2 apart instead of ~1e-5) so that
    argmax agreement after int8 quantisation means something.
    """
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(initializer_range=0.2)).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx_export.export(model, path, opset=18)
    return model, path
