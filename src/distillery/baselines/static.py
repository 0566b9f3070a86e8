"""A static-embedding student: model2vec's static embeddings of the teacher (each token's
vector from the teacher's encoder, PCA-reduced), a mean over the tokens of a text and a
linear head, trained with the teacher's logits on train + transfer (the corpus and KD loss of
stage ``distill``; the embeddings train too: frozen static embeddings cap well below the
students), exported to ONNX and quantised to int8.

No attention, no layers: its cost is a table lookup and one small matrix product, so its
latency is mostly the tokeniser's. Served like every ONNX file (``tokenizers`` +
ONNX Runtime, :class:`distillery.serve.space_app.Encoder`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast
from transformers.modeling_outputs import SequenceClassifierOutput

from distillery.baselines.base import META, Context
from distillery.config.baselines import BaselinesParams
from distillery.data.prepared import concat
from distillery.distill import losses, teacher_logits
from distillery.export import onnx_export, quantize
from distillery.measure import bench, evaluate
from distillery.modeling import training
from distillery.serve.space_app import Encoder

logger = logging.getLogger(__name__)

KIND = "static"
INPUTS = ["input_ids", "attention_mask"]


class StaticClassifier(torch.nn.Module):
    """Mean of the token embeddings of a text (padding masked out), dropout, a linear head."""

    def __init__(self, embeddings: torch.Tensor, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        # what the pipeline's scoring and export read of a classifier's config
        self.config = SimpleNamespace(num_labels=n_classes, model_type=KIND)
        self.embed = torch.nn.Embedding.from_pretrained(embeddings.float(), freeze=False)
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(embeddings.shape[1], n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **_: object) -> SequenceClassifierOutput:
        x = self.embed(input_ids)  # (B, T, D)
        mask = attention_mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, D)
        return SequenceClassifierOutput(logits=self.head(self.drop(pooled)))  # (B, C)


class StaticOnnx:
    """The saved int8 file with its tokenizer: raw texts in, logits out, one text per call
    (as served)."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / META).read_text())
        self.labels, self.n_params = meta["labels"], meta["n_params"]
        self.provider = "cpu"  # ONNX Runtime on one thread: no thread pool to wake
        self.session = bench.ort_session(str(folder / "model.onnx"), "cpu", threads=1)
        self.encode = Encoder(folder / "tokenizer.json", meta["max_length"], INPUTS)

    def logits(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
        rows = [self.session.run(["logits"], self.encode(t, None if pairs is None
                                                         else pairs[i])[0])[0][0]
                for i, t in enumerate(texts)]
        return np.stack(rows).astype(np.float32)  # (N, C)


def load(folder: Path) -> StaticOnnx:
    return StaticOnnx(folder)


def _static_embeddings(teacher: str, dims: int):
    """model2vec's distillation of the teacher's encoder: ``(StaticModel, tokenizer)``."""
    from model2vec.distill import distill

    static = distill(model_name=teacher, pca_dims=dims)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=static.tokenizer,
                                      **special_tokens(static.tokenizer, static.unk_token_id))
    return static, wrapped


def special_tokens(tokenizer, unk_id: int | None) -> dict[str, str | None]:
    """Pad and unknown tokens of model2vec's tokenizer, chosen among its own tokens: a token
    it lacks (a causal LM has no ``[PAD]``) would get an id past the embedding table. The pad
    token is masked out of the mean, so any token serves when the tokenizer names none."""
    vocab = tokenizer.get_vocab()
    pad = (tokenizer.padding or {}).get("pad_token")
    if pad not in vocab:
        pad = "[PAD]" if "[PAD]" in vocab else tokenizer.id_to_token(0)
    unk = tokenizer.id_to_token(unk_id) if unk_id is not None else None
    return {"pad_token": pad, "unk_token": unk if unk in vocab else None}


def train(ctx: Context, p: BaselinesParams) -> tuple[StaticOnnx, dict]:
    """Distil static embeddings from the teacher, train the classifier on its logits, export
    and quantise; returns the int8 model as served and its facts."""
    if ctx.teacher is None or ctx.logits is None:
        raise ValueError("the static baseline needs the teacher and its logits")
    static, tok = _static_embeddings(ctx.teacher, p.static_dims)
    splits = ctx.splits
    corpus = concat(splits["train"], splits["transfer"])
    t_logits = teacher_logits.load_many(ctx.logits, splits, "train", "transfer")
    torch.manual_seed(p.static_seed)
    model = StaticClassifier(torch.from_numpy(np.asarray(static.embedding)), len(ctx.names))
    cfg = training.TrainConfig(lr=p.static_lr, batch_size=64, max_length=ctx.max_length,
                               epochs=p.static_epochs, seed=p.static_seed)
    training.train(model, corpus, tok, cfg, losses.kd_loss_fn(t_logits, p.static_alpha,
                                                              p.static_temperature),
                   desc="static")
    val = splits["val"]
    val_fp32 = evaluate.score(evaluate.predict_logits(model, val, tok, ctx.max_length),
                              val.labels, ctx.metric)
    n_params = sum(x.numel() for x in model.parameters())
    folder = ctx.out / KIND
    folder.mkdir(parents=True)
    onnx_export.export(model, folder / "fp32.onnx", opset=18, input_names=INPUTS)
    quantize.apply("dynamic", folder / "fp32.onnx", folder / "model.onnx", model_type="static",
                   num_heads=0, hidden_size=0)
    (folder / "fp32.onnx").unlink()
    tok.backend_tokenizer.save(str(folder / "tokenizer.json"))
    (folder / META).write_text(json.dumps({
        "kind": KIND, "labels": ctx.names, "max_length": ctx.max_length, "n_params": n_params,
        "dims": p.static_dims, "vocabulary": len(tok)}, indent=1))
    served = StaticOnnx(folder)
    facts = {"dims": p.static_dims, "vocabulary": len(tok), "val_score_fp32": round(val_fp32, 6),
             "val_score": round(evaluate.score(served.logits(val.texts, val.pairs), val.labels,
                                               ctx.metric), 6)}
    return served, facts
