"""The classifiers the lm-eval adapter runs: a saved torch model folder or an ONNX file.

Both go through the project's own paths, so that lm-eval sees exactly the logits the
``benchmark`` stage scores: :func:`distillery.modeling.loading.load_classifier` and
:func:`distillery.measure.evaluate.predict_logits` for torch,
:func:`distillery.measure.bench.ort_session` and :func:`distillery.measure.evaluate.onnx_logits`
(feeds filtered to the session's inputs) for ONNX, and :func:`distillery.data.prepared.encode`
underneath both.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from distillery.core.io import UserError
from distillery.data.prepared import Split
from distillery.export import onnx_export
from distillery.measure import bench, evaluate
from distillery.modeling import loading

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """A sequence classifier with its tokenizer: logits of a split of texts."""

    kind: str
    labels: list[str]
    """Class names (index = class id) the model was saved or exported with."""
    pair: bool | None
    """Whether the model was exported for sentence pairs (None: not recorded)."""
    max_length: int | None
    """Tokens per example recorded with the model (None: not recorded)."""

    def logits(self, split: Split, max_length: int, batch_size: int) -> np.ndarray:
        """``(N, C)`` logits of ``split`` in its order."""
        ...


class TorchBackend:
    """A classifier folder (teacher, student, pruned student) loaded by the project."""

    kind = "torch"

    def __init__(self, path: str, tokenizer: str | None = None, device: str = "cpu") -> None:
        import torch

        self.model = loading.load_classifier(path).to(torch.device(device)).eval()
        self.tokenizer = loading.load_tokenizer(tokenizer or path)
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.pair = None
        self.max_length = None

    def logits(self, split: Split, max_length: int, batch_size: int) -> np.ndarray:
        return evaluate.predict_logits(self.model, split, self.tokenizer, max_length,
                                       batch_size, desc="classifier (torch)")


class OnnxBackend:
    """An ONNX file written by stage ``export``, run by ONNX Runtime.

    Its metadata (:func:`distillery.export.onnx_export.read_metadata`) gives the labels, whether it
    takes pairs and ``max_length``; the tokenizer is not in the file. It scores one text at a
    time whatever the batch size asked, as stage ``benchmark`` does and as the file is served:
    dynamic int8 computes activation scales per call, so batching would score another model.
    """

    kind = "onnx"

    def __init__(self, path: str, tokenizer: str | None, provider: str = "cpu",
                 threads: int = 0) -> None:
        tokenizer = onnx_tokenizer(path, tokenizer)
        self.session = bench.ort_session(path, provider, threads)
        self.tokenizer = loading.load_tokenizer(tokenizer)
        meta = onnx_export.read_metadata(path)
        n_classes = self.session.get_outputs()[0].shape[-1]
        self.labels = (json.loads(meta["labels"]) if "labels" in meta
                       else [f"LABEL_{i}" for i in range(n_classes)] if isinstance(n_classes, int)
                       else [])
        self.pair = json.loads(meta["sentence_pair"]) if "sentence_pair" in meta else None
        self.max_length = int(meta["max_length"]) if "max_length" in meta else None

    def logits(self, split: Split, max_length: int, batch_size: int) -> np.ndarray:
        return evaluate.onnx_logits(self.session, split, self.tokenizer, max_length, 1)


def model_kind(path: str | Path) -> str:
    """``"onnx"`` for an ``.onnx`` file, ``"torch"`` for a model folder.

    Raises:
        UserError: ``path`` is neither.
    """
    path = Path(path)
    if path.suffix == ".onnx" and path.is_file():
        return "onnx"
    if path.is_dir():
        return "torch"
    raise UserError(f"path: {str(path)!r} is neither a model folder (save_pretrained) nor an "
                    ".onnx file")


def onnx_tokenizer(path: str | Path, tokenizer: str | None) -> str:
    """The tokenizer folder of an ONNX file: ``tokenizer`` if given, else the file's own
    folder when it holds a tokenizer.

    Raises:
        UserError: none given and none beside the file (ONNX files carry no tokenizer).
    """
    if tokenizer is not None:
        return tokenizer
    here = Path(path).parent
    if (here / "tokenizer_config.json").is_file():
        return str(here)
    raise UserError(f"tokenizer: {path} is an ONNX file, which carries no tokenizer; give the "
                    "model folder it was exported from (models/student for the students of the "
                    "default pipeline) as model arg tokenizer=... or --tokenizer")


def load_backend(path: str, tokenizer: str | None = None, device: str | None = None,
                 threads: int = 0) -> TorchBackend | OnnxBackend:
    """A torch folder or an ``.onnx`` file at ``path`` as a :class:`Backend`.

    ``device``: ``cpu`` or ``cuda[:i]`` (lm-eval's CLI passes ``cuda:0`` by default): CUDA
    where it is usable (the CUDA execution provider for ONNX), else the CPU, with a warning.
    """
    import torch

    kind = model_kind(path)
    wants_cuda = device is not None and str(device).startswith("cuda")
    if wants_cuda and not torch.cuda.is_available():
        logger.warning("device=%s: no CUDA device visible, scoring on the CPU", device)
        wants_cuda = False
    if kind == "onnx":
        provider = "cpu"
        if wants_cuda:
            usable, _ = bench.available_providers(["cuda"])
            provider = "cuda" if usable else "cpu"
        return OnnxBackend(path, tokenizer, provider, threads)
    return TorchBackend(path, tokenizer, str(device) if wants_cuda else "cpu")
