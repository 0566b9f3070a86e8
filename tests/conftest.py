"""Shared fixtures: offline Hub, seeds, a tiny BERT teacher and two tiny datasets (SST-2-like
single sentences in tsv, 3-class sentence pairs in csv).

Nothing here downloads: the tokenizer vocabulary and the data are made by the fixtures. The
database tests get a fresh PostgreSQL database each (``pg_url``) on a throwaway server on
loopback (``pg_server``: ``$DISTILLERY_TEST_PG`` or ``scripts/postgres.sh``).
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PYTEST_XDIST_WORKER" in os.environ:
    # `pytest -n N` (make test): N worker processes share the cores; one thread each (and in
    # the stage subprocesses they start) instead of every worker asking for all of them.
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # read by torch at import

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast  # noqa: E402

from distillery.data.prepared import Split  # noqa: E402

POSITIVE = ["good", "great", "charming", "moving", "fun", "brilliant"]
NEGATIVE = ["bad", "dull", "boring", "awful", "flat", "tedious"]
NEUTRAL = ["the", "film", "movie", "is", "a", "story", "of", "and", "it", "'s", "plot",
           "acting", "very", "quite", "\"", "."]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DIGITS = [str(i) for i in range(10)] + [f"##{i}" for i in range(10)]
PAIR_KEYWORDS = {"contra": "no", "entail": "yes", "neutral": "maybe"}
"""Label of a tiny pair -> the word its hypothesis holds (what makes the task learnable)."""
VOCAB = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL + DIGITS + list(PAIR_KEYWORDS.values())


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


def make_pairs(n: int, seed: int) -> Split:
    """Premise / hypothesis pairs in 3 classes (ids index the sorted ``PAIR_KEYWORDS``): the
    hypothesis holds the class keyword, the premise only filler (learnable from the pair)."""
    rng = random.Random(seed)
    names = sorted(PAIR_KEYWORDS)
    premises, hypotheses, labels = [], [], []
    for i in range(n):
        label = i % len(names)
        premises.append(" ".join(rng.sample(NEUTRAL[:-2], rng.randint(3, 6))) + f" {i}")
        hypothesis = rng.sample(NEUTRAL[:-2], rng.randint(1, 3))
        hypothesis.insert(rng.randint(0, len(hypothesis)), PAIR_KEYWORDS[names[label]])
        hypotheses.append(" ".join(hypothesis))
        labels.append(label)
    return Split(premises, labels, hypotheses)


def write_sst2_tsv(path: Path, split: Split) -> None:
    """A GLUE SST-2 file: ``sentence<TAB>label`` header, no quoting, the GLUE trailing space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{t} \t{y}\n" for t, y in zip(split.texts, split.labels, strict=True))
    path.write_text("sentence\tlabel\n" + rows, encoding="utf-8")


def write_pairs_csv(path: Path, split: Split) -> None:
    """A csv with columns premise, hypothesis, label (the label names of ``PAIR_KEYWORDS``)."""
    names = sorted(PAIR_KEYWORDS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["premise", "hypothesis", "label"])
        for t, h, y in zip(split.texts, split.pairs, split.labels, strict=True):
            writer.writerow([t, h, names[y]])


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
    """An SST-2-like ``data.source`` folder: GLUE ``train.tsv`` (400) and ``dev.tsv`` (60),
    integer labels 0/1 (the default ``data`` params read it as is)."""
    folder = tmp_path_factory.mktemp("sst2")
    write_sst2_tsv(folder / "train.tsv", make_sentences(400, seed=1))
    write_sst2_tsv(folder / "dev.tsv", make_sentences(60, seed=2))
    return folder


@pytest.fixture(scope="session")
def tiny_pair_dir(tmp_path_factory) -> Path:
    """A 3-class sentence-pair ``data.source`` folder: ``train.csv`` (300) and ``dev.csv`` (60)
    with columns premise, hypothesis, label (strings contra / entail / neutral). Read it with
    ``text_column: premise``, ``text_pair_column: hypothesis``, ``label_names: null``."""
    folder = tmp_path_factory.mktemp("pairs")
    write_pairs_csv(folder / "train.csv", make_pairs(300, seed=1))
    write_pairs_csv(folder / "dev.csv", make_pairs(60, seed=2))
    return folder


@pytest.fixture
def tiny_model():
    """A fresh random tiny classifier (vocab matching the tiny tokenizer)."""
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config())


def make_run_dir(folder: Path, teacher_dir: Path, pair: bool = False) -> Path:
    """The outputs of a pipeline run that the demo and the ``space`` stage read, tiny:
    ``models/{teacher,student}`` (random tiny BERT classifiers with the tiny tokenizer),
    ``models/onnx/student.onnx`` (variant ``student-onnx-fp32``, with the export's metadata),
    ``data/prepared`` (eval split and labels) and ``params.yaml``."""
    import json
    import shutil

    import yaml

    from distillery.data import prepared
    from distillery.export import onnx_export

    names = sorted(PAIR_KEYWORDS) if pair else ["negative", "positive"]
    tok = BertTokenizerFast.from_pretrained(teacher_dir)
    for seed, owner in enumerate(("teacher", "student")):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(tiny_config(
            vocab_size=len(tok), num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)}))
        model.save_pretrained(folder / "models" / owner, safe_serialization=True)
        tok.save_pretrained(folder / "models" / owner)
    inputs = prepared.model_inputs(tok, pair)
    meta = {"labels": json.dumps(names), "inputs": json.dumps(inputs), "model_type": "bert",
            "max_length": "16", "sentence_pair": json.dumps(pair), "producer": "distillery",
            "variant": "student-onnx-fp32", "precision": "fp32"}
    onnx_export.export(model.eval(), folder / "models/onnx/student.onnx", opset=18,
                       input_names=inputs, metadata=meta)
    prepared_dir = folder / "data/prepared"
    for seed, (name, n) in enumerate((("train", 40), ("val", 10), ("transfer", 10),
                                      ("eval", 30)), start=3):
        split = make_pairs(n, seed=seed) if pair else make_sentences(n, seed=seed)
        prepared.write_split(prepared_dir / f"{name}.jsonl", split)
    prepared.write_labels(prepared_dir / prepared.LABELS_FILE, names, pair)
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["teacher"].update(model=str(teacher_dir), max_length=16)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.rmtree(folder / "metrics", ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory, tiny_teacher_dir) -> Path:
    """A tiny pipeline run on single sentences (see :func:`make_run_dir`)."""
    return make_run_dir(tmp_path_factory.mktemp("run"), tiny_teacher_dir)


@pytest.fixture(scope="session")
def tiny_pair_run_dir(tmp_path_factory, tiny_teacher_dir) -> Path:
    """A tiny pipeline run on 3-class sentence pairs (see :func:`make_run_dir`)."""
    return make_run_dir(tmp_path_factory.mktemp("pair_run"), tiny_teacher_dir, pair=True)


PG_ENV = "DISTILLERY_TEST_PG"
"""URL of a running PostgreSQL server for the database tests (``.ci/run`` starts one with
``scripts/postgres.sh``); unset, the tests start their own."""


@pytest.fixture(scope="session")
def pg_server() -> str:
    """URL of a PostgreSQL server's maintenance database: ``$DISTILLERY_TEST_PG``, else a
    throwaway server started by ``scripts/postgres.sh`` for this session (skips, with the
    script's message, only when no server can start)."""
    if os.environ.get(PG_ENV):
        yield os.environ[PG_ENV]
        return
    script = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"
    # not under pytest's folders: those are closed to other users, and the server runs as the
    # postgres user when the tests run as root
    folder = tempfile.mkdtemp(prefix="distillery-pg.")
    proc = subprocess.run(["bash", str(script), folder], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"PostgreSQL could not start: {proc.stderr.strip()[-500:]}")
    try:
        yield proc.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "--stop", folder], capture_output=True)


@pytest.fixture
def pg_url(pg_server) -> str:
    """URL of a fresh, empty database on :func:`pg_server`, dropped after the test."""
    with fresh_database(pg_server) as url:
        yield url


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """URL of a new, empty database on the PostgreSQL ``server`` (the URL of its maintenance
    database), dropped on exit."""
    import psycopg  # the `postgres` extra (make test installs it)

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        yield server.rsplit("/", 1)[0] + f"/{name}"
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pytest_collection_modifyitems(config, items):
    """Longest first: the end-to-end ``dvc repro`` and the stage chains start at once, so that
    with ``pytest -n 2`` (make test) the quick unit tests fill the other worker meanwhile."""
    def rank(item) -> int:
        if item.get_closest_marker("e2e"):
            return 0
        return 1 if "tests/stages/" in item.nodeid else 2

    items.sort(key=rank)  # stable: the order within each group is kept
