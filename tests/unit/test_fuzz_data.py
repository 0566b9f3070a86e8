"""Property-based tests (hypothesis) of reading data files: stages ``data`` and ``prepare``.

Generated CSV / TSV / JSONL / JSON files (BOMs, CRLF, quotes, tabs, embedded newlines, empty
and huge fields, unicode) go through :func:`~distillery.data.sources.materialise` then
:func:`~distillery.data.sources.load_raw`, as the two stages run them. A well-formed file
yields exactly its rows (stripped, empty texts dropped); a damaged one (invalid bytes, cut
short, a missing column, empty) yields rows or one ``UserError`` naming the file, never another
exception. Deterministic (``derandomize``), no example database written.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distillery.config.data import DataParams
from distillery.core.io import UserError
from distillery.data import sources
from tests.unit.fuzzing import fuzz

SPECIAL = '",;\'\t\n\r \\#\u00a0\u2028\ufeffé€😀\x0b'
"""Characters that trip readers: quotes, separators, line breaks, BOM, non-ASCII."""
texts = st.one_of(
    st.text(alphabet=st.sampled_from(SPECIAL + "abc xyz012"), max_size=20),
    st.text(max_size=20),
    st.sampled_from(["", " ", "null", "NA", "N/A", "nan", "None", "2010", "1e5", "-", '"',
                     '" dull', "a,b", "it 's \"great\" fun", "#comment"]),
    st.just("x" * 200_000),  # a huge field (beyond the csv module's 131,072 default)
)
INT_LABELS = st.sampled_from([0, 1, 2])
WORD_LABELS = st.sampled_from(["pos", "neg", "neutral", "very good"])
FORMATS = ["csv", "tsv", "jsonl", "json"]


@st.composite
def table(draw, kind: str) -> tuple[str, list[tuple[str, object]], dict]:
    """Rows (text, label) a file of ``kind`` can hold, and how to write them."""
    labels = draw(st.sampled_from([INT_LABELS, WORD_LABELS]))
    text = texts.map(lambda t: t.replace("\t", " ").replace("\n", " ").replace("\r", " ")) \
        if kind == "tsv" else texts  # GLUE-style tsv: no quoting, so no tab or line break
    rows = draw(st.lists(st.tuples(text, labels), min_size=0, max_size=8))
    if draw(st.integers(0, 3)):  # mostly: two plain rows of two classes among the odd ones
        a, b = draw(st.lists(labels, min_size=2, max_size=2, unique=True))
        for row in (("first text", a), ("second text", b)):
            rows.insert(draw(st.integers(0, len(rows))), row)
    style = {"bom": draw(st.booleans()), "newline": draw(st.sampled_from(["\n", "\r\n"])),
             "quote_all": draw(st.booleans()), "ascii": draw(st.booleans()),
             "extra_column": draw(st.booleans()), "final_newline": draw(st.booleans())}
    return kind, rows, style


def render(kind: str, rows: list, style: dict) -> bytes:
    """``rows`` as the bytes of a well-formed file of ``kind``."""
    nl = style["newline"]
    head = ["id", "sentence", "label"] if style["extra_column"] else ["sentence", "label"]
    records = [dict(zip(head, ([i] if style["extra_column"] else []) + [t, y], strict=True))
               for i, (t, y) in enumerate(rows)]
    if kind == "csv":
        buf = io.StringIO()
        quoting = csv.QUOTE_ALL if style["quote_all"] else csv.QUOTE_MINIMAL
        w = csv.DictWriter(buf, head, lineterminator=nl, quoting=quoting)
        w.writeheader()
        w.writerows(records)
        out = buf.getvalue()
    elif kind == "tsv":
        out = nl.join("\t".join(str(r[c]) for c in head) for r in [dict(zip(head, head,
                                                                          strict=True))]
                      + records) + nl
    elif kind == "jsonl":
        out = "".join(json.dumps(r, ensure_ascii=style["ascii"]) + nl for r in records)
    else:
        out = json.dumps(records, ensure_ascii=style["ascii"])
    if not style["final_newline"] and out.endswith(nl) and kind in ("csv", "tsv", "jsonl"):
        out = out[: -len(nl)]
    return (b"\xef\xbb\xbf" if style["bom"] else b"") + out.encode()


def stage_data_then_prepare(tmp: Path, name: str, raw: bytes):
    """Stage ``data`` then ``prepare``'s reading of a source folder holding one file."""
    src, out = tmp / "src", tmp / "raw"
    for folder in (src, out):
        if folder.exists():
            for f in folder.iterdir():
                f.unlink()
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(raw)
    p = DataParams(source=str(src), text_column="sentence", label_column="label",
                   label_names=None, eval_split="dev")
    sources.materialise(p, out)
    return sources.load_raw(out, p)


def expected(rows: list) -> tuple[list[str], list[str]] | None:
    """Texts and label names a reader must return (None: it must refuse the file)."""
    kept = [(t.strip(), str(y)) for t, y in rows if t.strip()]
    if len({y for _, y in kept}) < 2:
        return None  # no example, or a single class
    return [t for t, _ in kept], [y for _, y in kept]


@pytest.mark.parametrize("kind", FORMATS)
def test_well_formed_files_give_their_rows(tmp_path, kind):
    """25 well-formed files per format: exactly their rows, or a refusal only when nothing
    is left to learn (no text, one class)."""
    seen: Counter = Counter()

    @fuzz(25)
    @given(table(kind))
    def prop(case):
        kind, rows, style = case
        name = f"train.{kind}"
        want = expected(rows)
        seen["cases"] += 1
        try:
            splits, names, _ = stage_data_then_prepare(tmp_path, name, render(kind, rows, style))
        except UserError as err:
            assert want is None, f"refused a well-formed file: {err}"
            assert name in str(err) or "train has a single class" in str(err), str(err)
            seen["refused"] += 1
            return
        assert want is not None
        train = splits["train"]
        assert train.texts == want[0]
        assert [names[i] for i in train.labels] == want[1]

    prop()
    print(f"well-formed {kind} files: {dict(seen)}")
    assert seen["cases"] >= 25 and seen["refused"] < seen["cases"] / 2


@st.composite
def damaged(draw, kind: str) -> tuple[str, bytes]:
    """A well-formed file, then damaged one way."""
    kind, rows, style = draw(table(kind))
    raw = render(kind, rows, style)
    how = draw(st.sampled_from(["byte", "cut", "header", "empty", "junk", "quote", "blank"]))
    pos = draw(st.integers(0, len(raw)))
    if how == "byte":
        raw = raw[:pos] + draw(st.sampled_from([b"\xff", b"\xe9", b"\x00", b"\xc3", b"\x81"])) \
            + raw[pos:]
    elif how == "cut":
        raw = raw[:pos]
    elif how == "header":  # the label column renamed or gone
        raw = raw.replace(b"label", draw(st.sampled_from([b"labels", b"", b"sentence"])), 1)
    elif how == "empty":
        raw = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\n", b"\r\n\r\n", b" "]))
    elif how == "junk":
        raw = draw(st.binary(max_size=40))
    elif how == "quote":
        raw = raw[:pos] + b'"' + raw[pos:]
    else:
        raw = raw[:pos] + b"\n\n" + raw[pos:]
    return kind, raw


@pytest.mark.parametrize("kind", FORMATS)
def test_damaged_files_give_rows_or_one_message_naming_the_file(tmp_path, kind):
    """25 damaged files per format: rows, or a ``UserError`` naming the file; nothing else."""
    seen: Counter = Counter()

    @fuzz(25)
    @given(damaged(kind))
    def prop(case):
        kind, raw = case
        name = f"train.{kind}"
        seen["cases"] += 1
        try:
            splits, names, _ = stage_data_then_prepare(tmp_path, name, raw)
        except UserError as err:
            assert name in str(err) or "train has a single class" in str(err), str(err)
            assert "\n" not in str(err).strip(), str(err)
            seen["refused"] += 1
            return
        train = splits["train"]
        assert train.texts and all(isinstance(t, str) and t == t.strip() and t
                                   for t in train.texts)
        assert len(names) >= 2 and all(0 <= i < len(names) for i in train.labels)

    prop()
    print(f"damaged {kind} files: {dict(seen)}")
    assert seen["cases"] >= 25


@pytest.mark.parametrize("kind", FORMATS)
def test_a_huge_field_is_read(tmp_path, kind):
    rows = [("x" * 200_000, 0), ("short", 1)]
    style = {"bom": False, "newline": "\n", "quote_all": False, "ascii": True,
             "extra_column": False, "final_newline": True}
    splits, _, _ = stage_data_then_prepare(tmp_path, f"train.{kind}", render(kind, rows, style))
    assert [len(t) for t in splits["train"].texts] == [200_000, 5]


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("train.jsonl", b"", "train.jsonl is empty (no header, no rows)"),  # was StopIteration
    ("train.csv", b"\xef\xbb\xbf\r\n", "train.csv is empty"),
    ("train.csv", b'"sentence,label\n"\n0",0', "its columns are: 'sentence,label\\n', "),
    ("train.jsonl", b'{"sentence": "a", "": 0}\n', "its columns are: sentence, ''"),
    ("train.json", b'[{"sentence": "a", "label": 0}', "train.json is not readable as json"),
], ids=["empty-jsonl", "bom-crlf-csv", "newline-in-header", "unnamed-column", "cut-json"])
def test_damaged_files_found_by_fuzzing_end_with_one_line_naming_the_file(tmp_path, name, raw,
                                                                          message):
    with pytest.raises(UserError) as err:
        stage_data_then_prepare(tmp_path, name, raw)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
