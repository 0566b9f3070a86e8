"""Shared fixtures: offline Hub, seeds, a tiny BERT teacher and a tiny SST-2-like dataset.

Nothing here downloads: the tokenizer vocabulary and the data are made by the fixtures.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast  # noqa: E402

from distillery.data import Split, write_tsv  # noqa: E402

POSITIVE = ["good", "great", "charming", "moving", "fun", "brilliant"]
NEGATIVE = ["bad", "dull", "boring", "awful", "flat", "tedious"]
NEUTRAL = ["the", "film", "movie", "is", "a", "story", "of", "and", "it", "'s", "plot",
           "acting", "very", "quite", "\"", "."]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DIGITS = [str(i) for i in range(10)] + [f"##{i}" for i in range(10)]
VOCAB = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL + DIGITS


def tiny_config(**overrides) -> BertConfig:
    """The house tiny BERT (STYLE.md): hidden 32, 2 layers, 4 heads, intermediate 37."""
    kw = dict(vocab_size=len(VOCAB), hidden_size=32,
              num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
              max_position_embeddings=64, num_labels=2)
    kw.update(overrides)
    return BertConfig(**kw)


def make_sentences(n: int, seed: int) -> Split:
    """Sentences whose label is the polarity of their sentiment word (learnable)."""
    rng = random.Random(seed)
    sentences, labels = [], []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        filler = rng.sample(NEUTRAL, rng.randint(2, 6))
        filler.insert(rng.randint(0, len(filler)), word)
        sentences.append(" ".join(filler) + f" {i}")  # the index keeps sentences unique
        labels.append(label)
    return Split(sentences, labels)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory) -> Path:
    """A saved tiny BERT classifier with its WordPiece tokenizer (a ``teacher.model`` folder)."""
    folder = tmp_path_factory.mktemp("tiny_teacher")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    # transformers 5 ignores ``vocab_file=`` here (it builds a 5-token, specials-only vocab);
    # ``vocab=`` takes the vocab.txt path.
    tok = BertTokenizerFast(vocab=str(vocab), do_lower_case=True)
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(vocab_size=len(tok)))
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_raw_dir(tmp_path_factory) -> Path:
    """A GLUE-format mirror: ``<root>/sst2/{train,dev}.tsv``; returns ``<root>``."""
    root = tmp_path_factory.mktemp("mirror")
    write_tsv(root / "sst2" / "train.tsv", make_sentences(400, seed=1))
    write_tsv(root / "sst2" / "dev.tsv", make_sentences(60, seed=2))
    return root


@pytest.fixture
def tiny_model():
    """A fresh random tiny classifier (vocab matching the tiny tokenizer)."""
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config())
