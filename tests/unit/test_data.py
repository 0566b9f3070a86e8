"""Tests of ``distillery.data``: GLUE TSV files, fetching, stratified splits and batching."""

from __future__ import annotations

import itertools
import math
import random
import sys
import types

import pytest

from distillery import data
from distillery.data import Split, read_tsv, write_tsv
from tests.conftest import make_sentences

GLUE_LIKE = (
    "sentence\tlabel\n"
    'the "best" film of the year \t1\n'  # quotes kept as is (QUOTE_NONE)
    "it 's a charming and often affecting journey . \t1\n"  # the GLUE trailing space
    '"quoted from the start\t0\n'
    "an unfinished ` quote and a '' closing one \t0\n"
)


def _mirror(root, train: str = GLUE_LIKE, dev: str | None = GLUE_LIKE):
    folder = root / "sst2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text(train)
    if dev is not None:
        (folder / "dev.tsv").write_text(dev)
    return root


# --------------------------------------------------------------------------- read / write


def test_read_tsv_keeps_quotes_and_strips_trailing_spaces(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text(GLUE_LIKE)
    split = read_tsv(path)
    assert split.sentences == [
        'the "best" film of the year',
        "it 's a charming and often affecting journey .",
        '"quoted from the start',
        "an unfinished ` quote and a '' closing one",
    ]
    assert split.labels == [1, 1, 0, 0]


def test_read_tsv_accepts_unlabelled_rows(tmp_path):
    path = tmp_path / "transfer.tsv"
    path.write_text("sentence\tlabel\nno label here\t-1\n")
    assert read_tsv(path) == Split(["no label here"], [-1])


def test_read_tsv_missing_file_says_run_dvc_repro(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        read_tsv(tmp_path / "raw" / "train.tsv")
    assert "train.tsv" in str(err.value) and "dvc repro" in str(err.value)


@pytest.mark.parametrize(
    "text",
    ["text\tlabel\na\t1\n", "sentence,label\na,1\n", "label\tsentence\n1\ta\n", ""],
    ids=["renamed", "commas", "swapped", "empty-file"],
)
def test_read_tsv_bad_header(tmp_path, text):
    path = tmp_path / "train.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"header is .*expected \['sentence', 'label'\]"):
        read_tsv(path)


@pytest.mark.parametrize(
    "row",
    ["a fine film\t2", "a fine film\tpositive", "no label column", "a\tb\t1", "", "a film\t"],
    ids=["label-2", "label-word", "no-tab", "three-columns", "blank-line", "empty-label"],
)
def test_read_tsv_bad_label_row_names_file_and_line(tmp_path, row):
    path = tmp_path / "train.tsv"
    path.write_text(f"sentence\tlabel\ngood\t1\n{row}\nbad\t0\n")
    with pytest.raises(ValueError, match=r"train\.tsv:3: expected 'sentence<TAB>label'"):
        read_tsv(path)


def test_read_tsv_header_only(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("sentence\tlabel\n")
    with pytest.raises(ValueError, match="no data rows"):
        read_tsv(path)


def test_write_read_roundtrip(tmp_path):
    split = Split(["it 's a charming journey .", "dull , flat", "no label"], [1, 0, -1])
    path = tmp_path / "prepared" / "train.tsv"
    write_tsv(path, split)
    assert path.read_text().splitlines()[0] == "sentence\tlabel"
    assert read_tsv(path) == split


def test_write_read_roundtrip_with_double_quotes(tmp_path):
    split = Split(['the "best" film', '"quoted from the start', "ends with a quote\""], [1, 0, 1])
    write_tsv(tmp_path / "train.tsv", split)
    assert read_tsv(tmp_path / "train.tsv") == split


def test_write_tsv_writes_glue_bytes(tmp_path):
    write_tsv(tmp_path / "dev.tsv", Split(['a "quoted" word', "it 's fun ."], [1, 0]))
    assert (tmp_path / "dev.tsv").read_bytes() == (
        b'sentence\tlabel\na "quoted" word\t1\nit \'s fun .\t0\n')  # no quoting, LF endings


@pytest.mark.parametrize("bad", ["a\ttab", "a\nnewline", "a\rreturn"],
                         ids=["tab", "newline", "carriage-return"])
def test_write_tsv_rejects_tabs_and_newlines_and_writes_nothing(tmp_path, bad):
    path = tmp_path / "train.tsv"
    with pytest.raises(ValueError, match="tab or newline"):
        write_tsv(path, Split(["fine", bad], [1, 0]))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- fetch


@pytest.fixture
def fake_hub(monkeypatch):
    """Replace ``datasets.load_dataset`` with a fake returning plain column dicts."""
    calls: list[str] = []
    hub = {
        "train": {"sentence": ["a fine film ", "a dull film "], "label": [1, 0]},
        "validation": {"sentence": ["it 's fun ."], "label": [1]},
        "test": {"sentence": ["hidden"], "label": [-1]},
    }

    def load_dataset(name, *args, **kwargs):
        calls.append(name)
        return hub

    fake = types.ModuleType("datasets")
    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    return calls


def test_fetch_sst2_copies_the_mirror_byte_for_byte(tmp_path, fake_hub):
    mirror = _mirror(tmp_path / "mirror")
    out = tmp_path / "raw" / "sst2"
    source = data.fetch_sst2(out, mirror, "stanfordnlp/sst2")
    assert source == f"mirror:{mirror / 'sst2'}"
    assert sorted(p.name for p in out.iterdir()) == ["dev.tsv", "train.tsv"]
    for name in ("train.tsv", "dev.tsv"):
        assert (out / name).read_bytes() == (mirror / "sst2" / name).read_bytes()
    assert fake_hub == []  # no download


def test_fetch_sst2_replaces_a_stale_output(tmp_path, fake_hub):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "stale.tsv").write_text("old")
    data.fetch_sst2(out, _mirror(tmp_path / "mirror"), "stanfordnlp/sst2")
    assert sorted(p.name for p in out.iterdir()) == ["dev.tsv", "train.tsv"]


def test_fetch_sst2_malformed_mirror_fails_and_writes_nothing(tmp_path, fake_hub):
    mirror = _mirror(tmp_path / "mirror", dev="text\tlabel\na\t1\n")
    out = tmp_path / "raw"
    with pytest.raises(ValueError, match="header"):
        data.fetch_sst2(out, mirror, "stanfordnlp/sst2")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror"]


@pytest.mark.parametrize("mirror_state", ["absent", "train-only"])
def test_fetch_sst2_falls_back_to_the_hub(tmp_path, fake_hub, mirror_state):
    mirror = tmp_path / "mirror"
    if mirror_state == "train-only":
        _mirror(mirror, dev=None)
    out = tmp_path / "raw" / "sst2"
    source = data.fetch_sst2(out, mirror, "org/sst2-copy")
    assert source == "hub:org/sst2-copy"
    assert fake_hub == ["org/sst2-copy"]
    assert sorted(p.name for p in out.iterdir()) == ["dev.tsv", "train.tsv"]
    assert read_tsv(out / "train.tsv") == Split(["a fine film", "a dull film"], [1, 0])
    assert read_tsv(out / "dev.tsv") == Split(["it 's fun ."], [1])  # dev = hub validation


# --------------------------------------------------------------------------- splits


@pytest.fixture(scope="module")
def pool() -> Split:
    return make_sentences(400, seed=1)  # balanced, unique sentences


def _imbalanced(n: int, positive_rate: float) -> Split:
    full = make_sentences(4 * n, seed=3)
    pos = [i for i, y in enumerate(full.labels) if y == 1][: int(n * positive_rate)]
    neg = [i for i, y in enumerate(full.labels) if y == 0][: n - len(pos)]
    idx = pos + neg
    random.Random(0).shuffle(idx)
    return full.subset(idx)


@pytest.mark.parametrize(
    ("n_train", "n_val", "n_transfer"), [(100, 40, 60), (50, 10, 0), (200, 100, 100), (1, 1, 398)]
)
def test_make_splits_exact_sizes_and_disjoint(pool, n_train, n_val, n_transfer):
    splits = data.make_splits(pool, n_train, n_val, n_transfer, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {
        "train": n_train, "val": n_val, "transfer": n_transfer}
    sets = {k: set(v.sentences) for k, v in splits.items()}
    assert all(len(sets[k]) == len(splits[k]) for k in splits)  # no repeats inside a split
    assert not sets["train"] & sets["val"]
    assert not sets["train"] & sets["transfer"]
    assert not sets["val"] & sets["transfer"]
    assert set().union(*sets.values()) <= set(pool.sentences)


def test_make_splits_keeps_each_sentence_with_its_label(pool):
    truth = dict(zip(pool.sentences, pool.labels, strict=True))
    splits = data.make_splits(pool, 100, 40, 0, seed=0)
    for name in ("train", "val"):
        split = splits[name]
        assert all(truth[s] == y for s, y in zip(split.sentences, split.labels, strict=True))


def test_make_splits_transfer_is_unlabelled(pool):
    transfer = data.make_splits(pool, 100, 40, 60, seed=0)["transfer"]
    assert transfer.labels == [-1] * 60
    assert math.isnan(data.label_balance(transfer))  # nothing labelled


@pytest.mark.parametrize("positive_rate", [0.5, 0.3, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_make_splits_is_stratified(positive_rate, seed):
    source = _imbalanced(500, positive_rate)
    rate = data.label_balance(source)
    splits = data.make_splits(source, 120, 50, 0, seed=seed)
    for name, n in (("train", 120), ("val", 50)):
        assert abs(data.label_balance(splits[name]) - rate) <= 1 / n + 1e-9, name


def test_make_splits_is_deterministic_for_a_seed(pool):
    first = data.make_splits(pool, 100, 40, 60, seed=7)
    assert data.make_splits(pool, 100, 40, 60, seed=7) == first
    assert data.make_splits(pool, 100, 40, 60, seed=8) != first


def test_make_splits_drops_duplicates_before_splitting():
    base = make_sentences(60, seed=4)
    doubled = Split(base.sentences * 2, base.labels * 2)
    splits = data.make_splits(doubled, 30, 10, 20, seed=0)  # exactly the 60 unique sentences
    everything = [s for split in splits.values() for s in split.sentences]
    assert sorted(everything) == sorted(base.sentences)


@pytest.mark.parametrize(
    ("n_train", "n_val", "n_transfer", "match"),
    [(350, 60, 0, "asked for 410 examples but only 400"),
     (100, 40, 261, "prepare.n_transfer=261 but only 260 sentences remain")],
    ids=["train+val", "transfer"],
)
def test_make_splits_asking_for_too_much(pool, n_train, n_val, n_transfer, match):
    with pytest.raises(ValueError, match=match):
        data.make_splits(pool, n_train, n_val, n_transfer, seed=0)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [([1, 0, 1, 1], 0.75), ([1, -1, 0, -1], 0.5), ([0, 0], 0.0)],
)
def test_label_balance_ignores_unlabelled(labels, expected):
    assert data.label_balance(Split(["s"] * len(labels), labels)) == expected


def test_split_subset():
    split = Split(["a", "b", "c"], [0, 1, -1])
    assert split.subset([2, 0]) == Split(["c", "a"], [-1, 0])
    assert len(split) == 3


# --------------------------------------------------------------------------- batches


@pytest.fixture(scope="module")
def varied() -> Split:
    return make_sentences(10, seed=5)  # 3 to 8 words + an index: different lengths


def test_batches_dynamic_padding(varied, tiny_tokenizer):
    lengths = [len(tiny_tokenizer(s)["input_ids"]) for s in varied.sentences]
    out = list(data.batches(varied, tiny_tokenizer, batch_size=4, max_length=64))
    assert [len(idx) for _, _, idx in out] == [4, 4, 2]
    widths = set()
    for enc, labels, idx in out:
        assert set(enc) == {"input_ids", "attention_mask"}  # no token_type_ids
        width = max(lengths[i] for i in idx)  # padded to this batch's longest row only
        assert enc["input_ids"].shape == (len(idx), width)
        assert enc["attention_mask"].sum(1).tolist() == [lengths[i] for i in idx]
        assert labels.tolist() == [varied.labels[i] for i in idx]
        widths.add(width)
    assert len(widths) > 1  # the check above would also pass with global padding otherwise


def test_batches_rows_match_their_indices(varied, tiny_tokenizer):
    for enc, _, idx in data.batches(varied, tiny_tokenizer, 3, 64, shuffle=True, seed=1):
        for row, i in zip(enc["input_ids"], idx, strict=True):
            alone = tiny_tokenizer(varied.sentences[i])["input_ids"]
            assert row[: len(alone)].tolist() == alone


def test_batches_truncates_to_max_length(varied, tiny_tokenizer):
    for enc, _, _ in data.batches(varied, tiny_tokenizer, 4, max_length=6):
        assert enc["input_ids"].shape[1] == 6


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, list(range(10))),
        ({"sort_by_length": True}, "by-length"),
        ({"shuffle": True, "seed": 3}, "shuffled"),
    ],
    ids=["in-order", "sorted", "shuffled"],
)
def test_batches_order(varied, tiny_tokenizer, kwargs, expected):
    order = [i for _, _, idx in data.batches(varied, tiny_tokenizer, 4, 64, **kwargs)
             for i in idx]
    assert sorted(order) == list(range(10))  # every example exactly once
    if expected == "by-length":
        assert order == sorted(range(10), key=lambda i: len(varied.sentences[i]))
        assert order != list(range(10))
    elif expected == "shuffled":
        again = [i for _, _, idx in data.batches(varied, tiny_tokenizer, 4, 64, **kwargs)
                 for i in idx]
        assert order == again and order != list(range(10))
    else:
        assert order == expected


def test_batches_shuffled_and_grouped_by_length(tiny_tokenizer):
    split = make_sentences(40, seed=9)
    length = [len(s) for s in split.sentences]

    def run(seed):
        return [idx for _, _, idx in data.batches(split, tiny_tokenizer, 4, 64, shuffle=True,
                                                   seed=seed, sort_by_length=True)]

    got = run(seed=2)
    assert got == run(seed=2)  # deterministic for a seed
    assert sorted(i for idx in got for i in idx) == list(range(40))
    for idx in got:
        assert [length[i] for i in idx] == sorted(length[i] for i in idx)
    spans = sorted((min(length[i] for i in idx), max(length[i] for i in idx)) for idx in got)
    for (_, hi), (lo, _) in itertools.pairwise(spans):  # each batch a contiguous length range
        assert hi <= lo
    firsts = [length[idx[0]] for idx in got]
    assert firsts != sorted(firsts)  # ... but the batches themselves come in random order


def test_fetch_sst2_offline_without_mirror_says_how_to_fix(tmp_path, monkeypatch):
    def load_dataset(name, *args, **kwargs):
        raise ConnectionError("offline")

    fake = types.ModuleType("datasets")
    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(RuntimeError, match="fetch.mirror") as err:
        data.fetch_sst2(tmp_path / "raw", tmp_path / "nowhere", "stanfordnlp/sst2")
    assert "offline" in str(err.value)
    assert not (tmp_path / "raw").exists()
