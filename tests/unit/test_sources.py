"""Tests of ``distillery.data.sources``: materialising a source, reading every file format with
``datasets``, and turning raw labels into class ids. Every file is written by the test."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillery.config.data import DataParams
from distillery.core.io import UserError
from distillery.data import sources

ROWS = [("it 's \"great\" fun", 1), ("\" dull", 0), ("null", 1), ("2010", 0), ("NA", 1)]
"""Texts that a careless reader turns into quotes, NaN or numbers. The GLUE-style tsv holds
them unquoted: read with quoting, the opening quote of ``" dull`` would swallow the rows
after it."""


def _params(**kw) -> DataParams:
    base = dict(source="unused", text_column="sentence", label_column="label",
                label_names=None, eval_split="dev")
    return DataParams(**{**base, **kw})


def write(path: Path, rows, columns=("sentence", "label")) -> Path:
    """``rows`` in the format of ``path``'s extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = sources.FORMATS[path.suffix]
    records = [dict(zip(columns, r, strict=True)) for r in rows]
    if kind == "tsv":  # GLUE style: no quoting at all
        path.write_text("\t".join(columns) + "\n"
                        + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    elif kind == "csv":
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif kind == "json":
        path.write_text(json.dumps(records))
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    return path


# --------------------------------------------------------------------------- materialise


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_materialise_copies_a_file_byte_for_byte_and_counts_rows(tmp_path, ext):
    src = write(tmp_path / "src" / f"train{ext}", ROWS)
    metrics = sources.materialise(_params(source=str(src)), tmp_path / "raw")
    assert (tmp_path / "raw" / src.name).read_bytes() == src.read_bytes()
    assert metrics == {"origin": "local", "source": str(src), "files": 1, "train_rows": 5}


def test_materialise_copies_only_data_files_of_a_folder_and_skips_identical(tmp_path):
    src = tmp_path / "src"
    write(src / "train.tsv", ROWS)
    write(src / "dev.tsv", ROWS[:2])
    (src / "README.md").write_text("not data")
    out = tmp_path / "raw"
    metrics = sources.materialise(_params(source=str(src)), out)
    assert sorted(p.name for p in out.iterdir()) == ["dev.tsv", "train.tsv"]
    assert (metrics["files"], metrics["train_rows"], metrics["dev_rows"]) == (2, 5, 2)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    sources.materialise(_params(source=str(src)), out)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # untouched
    write(src / "dev.tsv", ROWS[:3])  # an edited source is copied again
    assert sources.materialise(_params(source=str(src)), out)["dev_rows"] == 3
    assert (out / "dev.tsv").read_bytes() == (src / "dev.tsv").read_bytes()
    # an edit of the same size and mtime is still noticed: files are compared byte for byte
    (src / "dev.tsv").write_bytes((src / "dev.tsv").read_bytes().replace(b"fun", b"FUN"))
    copy = (out / "dev.tsv").stat()
    os.utime(src / "dev.tsv", ns=(copy.st_atime_ns, copy.st_mtime_ns))
    sources.materialise(_params(source=str(src)), out)
    assert b"FUN" in (out / "dev.tsv").read_bytes()


def test_materialise_rejects_unsupported_sources(tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"data\.source=.*unsupported file type '\.xlsx'"):
        sources.materialise(_params(source=str(tmp_path / "data.xlsx")), tmp_path / "raw")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"data\.source=.* holds no .* file \(found: notes\.txt\)"):
        sources.materialise(_params(source=str(tmp_path / "empty")), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_materialise_unknown_name_offline_says_what_to_check(tmp_path):
    with pytest.raises(UserError, match=r"data\.source='no/such-dataset'.*Hub"):
        sources.materialise(_params(source="no/such-dataset"), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_materialise_does_not_download_a_hub_dataset_twice(tmp_path, monkeypatch):
    import datasets

    out = tmp_path / "raw"
    out.mkdir()
    meta = {"origin": "hub", "source": "glue", "config": "mrpc",
            "splits": {"train": 3, "validation": 2}}
    (out / sources.SOURCE_FILE).write_text(json.dumps(meta))

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(datasets, "load_dataset", no_download)
    metrics = sources.materialise(_params(source="glue", config="mrpc"), out)
    assert metrics == {"origin": "hub", "source": "glue", "files": 2, "train_rows": 3,
                       "validation_rows": 2}
    with pytest.raises(UserError, match="config='sst2'"):  # another config: download
        sources.materialise(_params(source="glue", config="sst2"), out)


# --------------------------------------------------------------------------- load_raw


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_every_format_reads_the_same_texts_and_labels(tmp_path, ext):
    write(tmp_path / f"train{ext}", ROWS)
    write(tmp_path / f"dev{ext}", [("good", 1), ("bad", 0)])
    splits, names, info = sources.load_raw(tmp_path, _params(label_names=["neg", "pos"]))
    assert splits["train"].texts == [t for t, _ in ROWS]  # quotes, "null", "NA", "2010" kept
    assert splits["train"].labels == [1, 0, 1, 0, 1] and splits["train"].pairs is None
    assert (splits["eval"].texts, splits["eval"].labels) == (["good", "bad"], [1, 0])
    assert names == ["neg", "pos"] and info["label_type"] == "int"


def test_string_labels_are_sorted_and_numbered(tmp_path):
    write(tmp_path / "train.csv", [("a", "refund"), ("b", "billing"), ("c", "login"),
                                   ("d", "billing")])
    write(tmp_path / "dev.csv", [("e", "login "), ("f", " refund")])  # stripped, as in train
    splits, names, info = sources.load_raw(tmp_path, _params())
    assert names == ["billing", "login", "refund"] and info["label_type"] == "str"
    assert splits["train"].labels == [2, 0, 1, 0] and splits["eval"].labels == [1, 2]


def test_sentence_pairs_are_read(tmp_path):
    cols = ("premise", "hypothesis", "label")
    write(tmp_path / "train.csv", [("p1", "h1", "yes"), ("p2", "h2", "no")], cols)
    splits, names, _ = sources.load_raw(tmp_path, _params(text_column="premise",
                                                          text_pair_column="hypothesis"))
    assert splits["train"].pairs == ["h1", "h2"] and names == ["no", "yes"]


def test_a_single_file_is_train_and_eval_is_left_to_carve(tmp_path):
    write(tmp_path / "tickets.csv", ROWS)
    splits, _, info = sources.load_raw(tmp_path, _params())
    assert set(splits) == {"train"} and info["eval_file"] is None


def test_empty_texts_are_dropped_and_counted(tmp_path):
    write(tmp_path / "train.csv", [("a", 0), ("  ", 1), ("", 0), ("b", 1)])
    splits, _, info = sources.load_raw(tmp_path, _params())
    assert splits["train"].texts == ["a", "b"] and info["train_empty_texts_dropped"] == 2


@pytest.mark.parametrize(
    ("rows", "dev", "kw", "error", "match"),
    [
        (ROWS, None, {"text_column": "text"}, ValueError,
         r"train\.csv: no column 'text' \(data\.text_column\); its columns are: sentence, label"),
        (ROWS, None, {"label_column": "nope"}, ValueError,
         r"no column 'nope' \(data\.label_column\); its columns are: sentence, label"),
        ([("a", 1), ("b", 1)], None, {}, ValueError, r"single class \('1'\).*at least 2"),
        ([("a", "x"), ("b", "y")], [("c", "z"), ("d", "z")], {}, ValueError,
         r"eval split: label 'z' \(2 examples\) does not occur in train"),
        ([("a", "x"), ("b", "y")], None, {"label_names": ["x", "y"]}, ValueError,
         r"labels are strings .*set data\.label_names: null"),
        ([("a", 0), ("b", 1)], None, {"label_names": ["n", "p", "q"]}, ValueError,
         r"data\.label_names has 3 names but train has 2 classes"),
        ([("", 0), (" ", 1)], None, {}, ValueError, r"train\.csv: no examples \(rows: 2"),
        ([("a", 0), ("b", "")], None, {}, ValueError, r"empty label .* row 2"),
        (ROWS, None, {"train_split": "training"}, UserError,
         r"no 'training' split .*\(splits: dev, train\)"),
    ],
    ids=["missing-column", "missing-label-column", "single-class", "eval-only-label",
         "names-for-strings", "names-wrong-length", "empty-split", "empty-label",
         "no-such-split"],
)
def test_bad_input_says_what_to_fix(tmp_path, rows, dev, kw, error, match):
    write(tmp_path / "train.csv", rows)
    write(tmp_path / "dev.csv", dev or [("z", rows[0][1])])
    with pytest.raises(error, match=match):
        sources.load_raw(tmp_path, _params(**kw))


def test_unreadable_file_names_the_format(tmp_path):
    (tmp_path / "train.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(ValueError, match=r"could not read train\.parquet as parquet"):
        sources.load_raw(tmp_path, _params())


def test_missing_folder_says_which_stage(tmp_path):
    with pytest.raises(UserError, match="dvc repro data"):
        sources.load_raw(tmp_path / "nowhere", _params())


# --------------------------------------------------------------------------- label ids


@pytest.mark.parametrize(
    ("train", "other", "label_names", "classlabel", "ids", "other_ids", "names", "kind"),
    [
        ([0, 1, 1], [1, 0], None, None, [0, 1, 1], [1, 0], ["0", "1"], "int"),
        ([0, 1, 1], [1], ["neg", "pos"], None, [0, 1, 1], [1], ["neg", "pos"], "int"),
        ([7, 3, 7], [3], None, None, [1, 0, 1], [0], ["3", "7"], "int"),
        ([0, 2, 1], [2], None, ["a", "b", "c"], [0, 2, 1], [2], ["a", "b", "c"], "int"),
        ([1, 0], [1], None, ["a", "b", "c"], [1, 0], [1], ["a", "b"], "int"),
        (["0", " 1", "1"], ["0", "1 "], None, None, [0, 1, 1], [0, 1], ["0", "1"], "int"),
        ([1.0, 0.0], [1.0], None, None, [1, 0], [1], ["0", "1"], "int"),
        (["b", "a", " c"], ["a", "c "], None, None, [1, 0, 2], [0, 2], ["a", "b", "c"], "str"),
    ],
    ids=["ints", "ints-named", "non-contiguous", "classlabel", "classlabel-subset",
         "int-strings", "int-floats", "strings"],
)
def test_label_ids_hand_cases(train, other, label_names, classlabel, ids, other_ids, names,
                              kind):
    got_ids, got_names, got_kind = sources.label_ids({"train": train, "eval": other},
                                                     label_names, classlabel)
    assert got_ids == {"train": ids, "eval": other_ids}
    assert (got_names, got_kind) == (names, kind)


def test_label_ids_rejects_mixed_types():
    with pytest.raises(ValueError, match="holds int, str values"):
        sources.label_ids({"train": [0, "a"]}, None)


@pytest.mark.parametrize("ext", [".csv", ".tsv"])
def test_a_file_in_another_encoding_names_the_file_the_byte_and_the_fix(tmp_path, ext):
    sep = "\t" if ext == ".tsv" else ","
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train", "dev"):
        text = f"sentence{sep}label\nun film réussi{sep}1\nsans intérêt{sep}0\n"
        (raw / f"{name}{ext}").write_bytes(text.encode("latin-1"))
    for step in (lambda: sources.materialise(_params(source=str(raw)), tmp_path / "out"),
                 lambda: sources.load_raw(raw, _params())):
        with pytest.raises(UserError) as err:
            step()
        msg = str(err.value)
        assert f"{ext} is not UTF-8 text (byte 0xe9 at position" in msg
        assert "re-save it as UTF-8" in msg and "iconv -f latin1" in msg


def test_a_hub_revision_reaches_load_dataset_and_is_recorded(tmp_path, monkeypatch):
    """No network: ``datasets.load_dataset`` is replaced; a new revision downloads again."""
    import datasets

    calls = []

    def fake_load(source, config=None, **kwargs):
        calls.append((source, config, kwargs.get("revision")))
        return datasets.DatasetDict(
            {"train": datasets.Dataset.from_dict({"sentence": ["a", "b"], "label": [0, 1]})})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    out = tmp_path / "raw"
    sources.materialise(_params(source="org/set", revision="3f2a1c0"), out)
    sources.materialise(_params(source="org/set", revision="3f2a1c0"), out)  # cached
    assert calls == [("org/set", None, "3f2a1c0")]
    assert json.loads((out / sources.SOURCE_FILE).read_text())["revision"] == "3f2a1c0"
    sources.materialise(_params(source="org/set", revision="v2"), out)
    assert calls[-1] == ("org/set", None, "v2")


# --------------------------------------------------------------------------- quoting, odd labels

BANKING = ('text\tcategory\n'
           'I am still waiting on my card?\tcard_arrival\n'
           '"My card got blocked.\nHow do I unblock my PIN?"\tpin_blocked\n'
           '"He said ""hi""\tthen left"\tgreeting\n'
           'Where is my card?\tcard_arrival\n')
"""Banking77-style export: quoted fields, one spanning two lines, one holding a tab and a
doubled quote."""


def test_quoted_tsv_reads_with_csv_quoting(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.tsv").write_text(BANKING)
    p = _params(source=str(tmp_path / "src"), text_column="text", label_column="category",
                quoting="csv")
    assert sources.materialise(p, tmp_path / "raw")["train_rows"] == 4
    splits, names, _ = sources.load_raw(tmp_path / "raw", p)
    assert splits["train"].texts == [
        "I am still waiting on my card?", "My card got blocked.\nHow do I unblock my PIN?",
        'He said "hi"\tthen left', "Where is my card?"]
    assert names == ["card_arrival", "greeting", "pin_blocked"]


@pytest.mark.parametrize("tab_in_quotes", [False, True], ids=["empty-label", "unreadable"])
def test_quoted_tsv_read_without_quoting_suggests_the_param(tmp_path, tab_in_quotes):
    text = BANKING if tab_in_quotes else BANKING.replace('""hi""\tthen', '""hi"" then')
    (tmp_path / "train.tsv").write_text(text)
    p = _params(text_column="text", label_column="category")
    with pytest.raises(UserError) as err:
        sources.load_raw(tmp_path, p)
    msg = str(err.value)
    assert "opens with a double quote" in msg and "set data.quoting=csv" in msg
    assert ("could not read train.tsv" if tab_in_quotes else "empty label") in msg
    if not tab_in_quotes:
        assert "in data row 2;" in msg


def test_an_empty_label_far_from_any_quote_does_not_mention_quoting(tmp_path):
    (tmp_path / "train.tsv").write_text('text\tlabel\n"quoted" fine\t1\na\t0\nb\t1\nc\t0\nd\t\n')
    with pytest.raises(UserError, match="empty label .* data row 5;") as err:
        sources.load_raw(tmp_path, _params(text_column="text"))
    assert "quoting" not in str(err.value)


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_a_nan_label_is_a_missing_label(tmp_path, ext):
    nan = "NaN" if ext == ".csv" else float("nan")
    write(tmp_path / f"train{ext}", [("a", 0.0), ("b", 1.0), ("c", nan), ("d", 1.0)])
    with pytest.raises(UserError, match=r"label (nan|'NaN') \(a missing value\).* data row 3; "
                                        r"every example needs a label"):
        sources.load_raw(tmp_path, _params())


def test_label_oddities_are_counted_and_warned_once_each(tmp_path, caplog):
    rows = [("a", "0"), ("b", "1"), ("c", "pos"), ("d", "None"), ("e", "0"), ("f", "1")]
    write(tmp_path / "train.csv", rows)
    write(tmp_path / "dev.csv", [("g", "null"), ("h", "1")])
    with caplog.at_level("WARNING", logger="distillery.data.labels"):
        with pytest.raises(UserError, match="'null'"):  # a label train lacks: still an error
            sources.load_raw(tmp_path, _params())
    write(tmp_path / "dev.csv", [("g", "None"), ("h", "1")])
    caplog.clear()
    with caplog.at_level("WARNING", logger="distillery.data.labels"):
        _, names, info = sources.load_raw(tmp_path, _params())
    assert names == ["0", "1", "None", "pos"]
    assert (info["labels_missing_like"], info["labels_mixed_numeric_words"]) == (2, 2)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert "2 label(s) read like a missing value ('None': 2)" in warned[0]
    assert "numbers (4 examples: '0': 2, '1': 2) and words (2 examples" in warned[1]
