"""Tests of ``distillery.data.prepared``: prepared split files, labels, ``encode`` and
``batches``."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from distillery.core.io import UserError
from distillery.data import prepared
from distillery.data.prepared import Split
from tests.conftest import make_pairs, make_sentences


@pytest.fixture(scope="module")
def tok(tiny_teacher_dir):
    """The tiny teacher's BERT WordPiece tokenizer (it makes token_type_ids)."""
    return AutoTokenizer.from_pretrained(str(tiny_teacher_dir))


@pytest.fixture(scope="module")
def tok_no_types(tok):
    """The same vocabulary, but a tokenizer without token_type_ids (like RoBERTa)."""
    other = copy.deepcopy(tok)
    other.model_input_names = ["input_ids", "attention_mask"]
    return other


# --------------------------------------------------------------------------- Split


def test_split_subset_keeps_pairs_and_order():
    split = Split(["a", "b", "c"], [0, 1, -1], ["x", "y", "z"])
    assert split.subset([2, 0]) == Split(["c", "a"], [-1, 0], ["z", "x"])
    assert Split(["a", "b"], [0, 1]).subset([1]) == Split(["b"], [1], None)
    assert len(split) == 3


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("pairs", [None, ["h one", 'a "quoted" \\ pair', "ünïcödé"]],
                         ids=["single", "pairs"])
def test_write_read_split_roundtrip(tmp_path, pairs):
    split = Split(['the "best" film', "line\nbreak\tand tab", "null"], [1, 0, -1], pairs)
    path = tmp_path / "prepared" / "train.jsonl"
    prepared.write_split(path, split)
    assert prepared.read_split(path) == split
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    assert list(rows[0]) == (["text", "text_pair", "label"] if pairs else ["text", "label"])
    assert rows[2]["text"] == "null" and rows[2]["label"] == -1
    assert [p.name for p in path.parent.iterdir()] == ["train.jsonl"]  # no temp file left


def test_read_split_missing_file_says_which_stage(tmp_path):
    with pytest.raises(UserError, match=r"train\.jsonl not found.*dvc repro prepare"):
        prepared.read_split(tmp_path / "train.jsonl")


@pytest.mark.parametrize("line", ['{"text": "a"}', "not json", '{"label": 1}'],
                         ids=["no-label", "not-json", "no-text"])
def test_read_split_bad_line_names_file_and_line(tmp_path, line):
    path = tmp_path / "val.jsonl"
    path.write_text('{"text": "ok", "label": 1}\n' + line + "\n")
    with pytest.raises(ValueError, match=r"val\.jsonl:2: not a prepared example"):
        prepared.read_split(path)


def test_read_split_rejects_mixed_pairs(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text('{"text": "a", "text_pair": "b", "label": 1}\n{"text": "c", "label": 0}\n')
    with pytest.raises(ValueError, match="some lines have a text_pair"):
        prepared.read_split(path)


def test_labels_roundtrip(tmp_path):
    prepared.write_labels(tmp_path / "labels.json", ["contra", "entail", "neutral"], pair=True)
    assert prepared.read_labels(tmp_path / "labels.json") == ["contra", "entail", "neutral"]
    assert json.loads((tmp_path / "labels.json").read_text()) == {
        "names": ["contra", "entail", "neutral"], "pair": True}


def test_read_labels_missing_says_which_stage(tmp_path):
    with pytest.raises(UserError, match="dvc repro prepare"):
        prepared.read_labels(tmp_path / "labels.json")


def test_load_prepared_reads_all_four_and_gives_empty_pair_splits_pairs(tmp_path):
    pairs = make_pairs(9, seed=0)
    splits = {"train": pairs.subset(range(5)), "val": pairs.subset([5, 6]),
              "transfer": Split([], [], None), "eval": pairs.subset([7, 8])}
    for name, split in splits.items():
        prepared.write_split(tmp_path / f"{name}.jsonl", split)
    prepared.write_labels(tmp_path / "labels.json", ["contra", "entail", "neutral"], pair=True)
    got, names = prepared.load_prepared(tmp_path)
    assert names == ["contra", "entail", "neutral"]
    assert list(got) == list(prepared.PREPARED)
    assert got["train"] == splits["train"] and got["eval"] == splits["eval"]
    assert got["transfer"] == Split([], [], [])  # concatenates with the other pair splits


def test_load_prepared_missing_split(tmp_path):
    prepared.write_labels(tmp_path / "labels.json", ["a", "b"], pair=False)
    with pytest.raises(UserError, match=r"train\.jsonl not found"):
        prepared.load_prepared(tmp_path)


def test_class_counts_ignores_unlabelled():
    split = Split(list("abcdef"), [0, 2, 2, -1, 2, 0])
    assert prepared.class_counts(split, 3) == [2, 0, 3]
    assert prepared.class_counts(split, 4) == [2, 0, 3, 0]
    with pytest.raises(ValueError, match=r"label 2 outside 0\.\.1"):
        prepared.class_counts(split, 2)


# --------------------------------------------------------------------------- encode


def test_model_inputs(tok, tok_no_types):
    assert prepared.model_inputs(tok, pair=False) == ["input_ids", "attention_mask"]
    assert prepared.model_inputs(tok, pair=True) == [
        "input_ids", "attention_mask", "token_type_ids"]
    assert prepared.model_inputs(tok_no_types, pair=True) == ["input_ids", "attention_mask"]


def test_encode_single_has_no_token_type_ids(tok):
    enc = prepared.encode(tok, ["good film", "a very dull and boring plot"], None, max_length=64)
    assert type(enc) is dict and list(enc) == ["input_ids", "attention_mask"]
    assert enc["input_ids"].dtype == torch.int64
    assert enc["input_ids"].shape == (2, 2 + 6)  # [CLS] ... [SEP], padded to the longest
    assert enc["attention_mask"].sum(1).tolist() == [4, 8]


def test_encode_pairs_marks_the_second_sentence(tok):
    enc = prepared.encode(tok, ["good film", "the plot"], ["yes", "no it is"], max_length=64)
    assert list(enc) == ["input_ids", "attention_mask", "token_type_ids"]
    ids = tok.convert_ids_to_tokens(enc["input_ids"][1].tolist())
    assert ids == ["[CLS]", "the", "plot", "[SEP]", "no", "it", "is", "[SEP]"]
    assert enc["token_type_ids"][1].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert enc["token_type_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]  # padding is 0


def test_encode_pairs_without_token_type_ids(tok_no_types):
    enc = prepared.encode(tok_no_types, ["good film"], ["yes"], max_length=64)
    assert list(enc) == ["input_ids", "attention_mask"]


def test_encode_pairs_truncates_the_longest_first(tok):
    enc = prepared.encode(tok, ["the film is a story of the plot"], ["yes"], max_length=8)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    assert tokens == ["[CLS]", "the", "film", "is", "a", "[SEP]", "yes", "[SEP]"]


@pytest.mark.parametrize("pairs", [None, ["yes", "maybe"]], ids=["single", "pairs"])
def test_encode_numpy_is_int64_and_matches_torch(tok, pairs):
    texts = ["good film", "a dull plot"]
    as_np = prepared.encode(tok, texts, pairs, 16, return_tensors="np")
    as_pt = prepared.encode(tok, texts, pairs, 16)
    assert list(as_np) == list(as_pt)
    for k, v in as_np.items():
        assert isinstance(v, np.ndarray) and v.dtype == np.int64
        assert v.tolist() == as_pt[k].tolist()


def test_encode_without_padding_gives_ragged_lists(tok):
    enc = prepared.encode(tok, ["good", "a dull plot"], None, 16, padding=False,
                          return_tensors=None)
    assert [len(x) for x in enc["input_ids"]] == [3, 5]


# --------------------------------------------------------------------------- batches


@pytest.fixture(scope="module")
def varied() -> Split:
    return make_sentences(10, seed=5)  # 3 to 8 words + an index: different lengths


def test_batches_dynamic_padding(varied, tok):
    lengths = [len(tok(s)["input_ids"]) for s in varied.texts]
    out = list(prepared.batches(varied, tok, batch_size=4, max_length=64))
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


def test_batches_with_pairs_match_encode(tok):
    split = make_pairs(7, seed=3)
    for enc, labels, idx in prepared.batches(split, tok, 3, 32, shuffle=True, seed=1):
        assert set(enc) == {"input_ids", "attention_mask", "token_type_ids"}
        alone = prepared.encode(tok, [split.texts[i] for i in idx],
                                [split.pairs[i] for i in idx], 32)
        assert all(torch.equal(enc[k], alone[k]) for k in alone)
        assert labels.tolist() == [split.labels[i] for i in idx]


def test_batches_sort_by_length_counts_the_pair(tok):
    split = Split(["a a a a a", "b", "c c c"], [0, 1, 0], ["x", "y y y y y y y y y", "z"])
    batches = prepared.batches(split, tok, 1, 64, sort_by_length=True)
    order = [i for _, _, idx in batches for i in idx]
    assert order == [2, 0, 1]  # 5+1, 9+1, 1+17 characters


def test_batches_rows_match_their_indices(varied, tok):
    for enc, _, idx in prepared.batches(varied, tok, 3, 64, shuffle=True, seed=1):
        for row, i in zip(enc["input_ids"], idx, strict=True):
            alone = tok(varied.texts[i])["input_ids"]
            assert row[: len(alone)].tolist() == alone


def test_batches_truncates_to_max_length(varied, tok):
    for enc, _, _ in prepared.batches(varied, tok, 4, max_length=6):
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
def test_batches_order(varied, tok, kwargs, expected):
    order = [i for _, _, idx in prepared.batches(varied, tok, 4, 64, **kwargs) for i in idx]
    assert sorted(order) == list(range(10))  # every example exactly once
    if expected == "by-length":
        assert order == sorted(range(10), key=lambda i: len(varied.texts[i]))
        assert order != list(range(10))
    elif expected == "shuffled":
        again = [i for _, _, idx in prepared.batches(varied, tok, 4, 64, **kwargs) for i in idx]
        assert order == again and order != list(range(10))
    else:
        assert order == expected


def test_batches_shuffled_and_grouped_by_length(tok):
    split = make_sentences(40, seed=9)
    length = [len(s) for s in split.texts]

    def run(seed):
        return [idx for _, _, idx in prepared.batches(split, tok, 4, 64, shuffle=True,
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


def test_concat_keeps_order_and_pairs_of_the_first_split():
    from distillery.data.prepared import Split, concat

    a = Split(["a1", "a2"], [0, 1], ["p1", "p2"])
    b = Split(["b1"], [-1], None)
    both = concat(a, b)
    assert (both.texts, both.labels, both.pairs) == (["a1", "a2", "b1"], [0, 1, -1],
                                                     ["p1", "p2"])
    assert concat(b, a).pairs is None
