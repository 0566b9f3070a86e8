"""Raw labelled text from a local file / folder or the Hugging Face Hub.

:func:`materialise` (stage ``data``) puts the source in ``data/raw``: local files are copied
byte for byte, a Hub dataset is downloaded once with ``datasets`` and saved as one parquet file
per split plus ``source.json``. :func:`load_raw` (stage ``prepare``) reads the train and eval
split files there with ``datasets``' packaged builders (csv, tsv, json / jsonl, parquet) and
turns the label column into class ids (:mod:`distillery.data.labels`). The ``data`` stage must
stay cheap for local sources, so ``datasets`` (and with it pandas / pyarrow) is imported only
where it is needed.
"""

from __future__ import annotations

import contextlib
import csv
import filecmp
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from distillery.config.data import DataParams
from distillery.core.io import UserError, atomic_path
from distillery.data.labels import label_ids, missing_label, oddities
from distillery.data.prepared import Split

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json",
           ".parquet": "parquet"}
"""Supported file extensions and how each is read."""
SOURCE_FILE = "source.json"
"""Written next to Hub downloads: where they came from."""


# --------------------------------------------------------------------------- stage data


def materialise(p: DataParams, out_dir: str | Path) -> dict[str, Any]:
    """Make ``p.source`` available in ``out_dir``.

    A local file or folder (only its files with a supported extension) is copied byte for
    byte, names kept; nothing is rewritten when ``out_dir`` already holds identical files.
    Anything else is a Hub dataset id: ``datasets.load_dataset(source, config,
    revision=revision)``, each split saved as ``<split>.parquet``, plus ``source.json``; skipped
    when ``source.json`` already names the same id, config and revision (``data/raw`` persists
    between runs).

    Returns:
        Metrics: ``origin`` (``local`` / ``hub``), ``source``, ``files`` and ``<split>_rows``.

    Raises:
        ValueError: a local source without a supported file.
        FileNotFoundError: not a local path, and the Hub download failed.
    """
    out_dir = Path(out_dir)
    if (src := p.local_source()) is not None:
        files = _local_files(src)
        if _same_files(files, out_dir):
            logger.info("%s is up to date with %s", out_dir, p.source)
        else:
            with atomic_path(out_dir) as tmp:
                tmp.mkdir()
                for f in files:
                    shutil.copyfile(f, tmp / f.name)
            logger.info("copied %d file(s) from %s to %s", len(files), p.source, out_dir)
        rows = {f"{f.stem}_rows": _count_rows(f, p.quoting) for f in files}
        return {"origin": "local", "source": p.source, "files": len(files), **rows}
    meta = _download(p.source, p.config, p.revision, out_dir)
    rows = {f"{s}_rows": n for s, n in meta["splits"].items()}
    return {"origin": "hub", "source": p.source, "files": len(rows), **rows}


def _local_files(src: Path) -> list[Path]:
    if src.is_file():
        if src.suffix.lower() not in FORMATS:
            raise UserError(f"data.source={str(src)!r}: unsupported file type {src.suffix!r}; "
                             f"use one of {', '.join(FORMATS)}")
        return [src]
    files = sorted(f for f in src.iterdir() if f.is_file() and f.suffix.lower() in FORMATS)
    if not files:
        present = ", ".join(sorted(f.name for f in src.iterdir())) or "nothing"
        raise UserError(f"data.source={str(src)!r} holds no {'/'.join(FORMATS)} file "
                         f"(found: {present}); point data.source at a folder with one file "
                         "per split named <split>.<ext>, or at a single file")
    return files


def _same_files(files: list[Path], out_dir: Path) -> bool:
    if not out_dir.is_dir() or {f.name for f in files} != {f.name for f in out_dir.iterdir()}:
        return False
    return all(filecmp.cmp(f, out_dir / f.name, shallow=False) for f in files)


def not_utf8(path: Path, err: UnicodeDecodeError) -> UserError:
    """The one message for a text file in another encoding: the file, the byte, the fix."""
    byte = err.object[err.start:err.start + 1].hex()
    return UserError(f"{path} is not UTF-8 text (byte 0x{byte} at position {err.start}): "
                     f"re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > "
                     f"utf8_{path.name}` if it is Latin-1")


def _count_rows(path: Path, quoting: str = "none") -> int:
    """Data rows of a local file, cheaply (no pandas)."""
    kind = FORMATS[path.suffix.lower()]
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    try:
        with _no_field_limit():
            return _count_text_rows(path, "csv-tab" if kind == "tsv" and quoting == "csv" else kind)
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    except (csv.Error, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not readable as {kind} ({err}); fix the file or give it "
                        "the extension of its real format") from None


@contextlib.contextmanager
def _no_field_limit():
    """Lift the csv module's 131,072-character limit on a field (a long document) for a
    while; the readers of ``datasets`` have none."""
    before = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _count_text_rows(path: Path, kind: str) -> int:
    with path.open(encoding="utf-8-sig", newline="") as f:
        if kind in ("csv", "csv-tab"):
            rows = csv.reader(f, delimiter="\t" if kind == "csv-tab" else ",")
            return max(0, sum(1 for row in rows if row) - 1)
        if kind == "json" and f.read(1) == "[":
            f.seek(0)
            return len(json.load(f))
        f.seek(0)
        lines = sum(1 for line in f if line.strip())
    return max(0, lines - 1) if kind == "tsv" else lines


def _download(source: str, config: str | None, revision: str | None,
              out_dir: Path) -> dict[str, Any]:
    wanted = {"origin": "hub", "source": source, "config": config, "revision": revision}
    meta_path = out_dir / SOURCE_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted:
            logger.info("%s already holds %s (config %s, revision %s): no download", out_dir,
                        source, config, revision)
            return meta
    logger.info("%s is not a local path: downloading it from the Hugging Face Hub", source)
    import datasets

    try:
        ds = datasets.load_dataset(source, config, revision=revision)
    except Exception as err:  # offline, unknown id, missing config...: all fixed the same way
        raise UserError(
            f"data.source={source!r} (data.config={config!r}, data.revision={revision!r}) is not "
            "an existing local file or folder, and downloading it from the Hugging Face Hub "
            f"failed ({type(err).__name__}: {err}). Check data.source (a path relative to the "
            "repo, or a Hub dataset id), data.config and data.revision, or go online."
        ) from err
    meta = {**wanted, "splits": {}}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for split, rows in ds.items():
            rows.to_parquet(str(tmp / f"{split}.parquet"))
            meta["splits"][split] = rows.num_rows
        (tmp / SOURCE_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# --------------------------------------------------------------------------- stage prepare


def load_raw(folder: str | Path, p: DataParams) -> tuple[dict[str, Split], list[str], dict]:
    """Read the train (and, if present, eval) split of a materialised source.

    Files are ``<split>.<ext>`` in ``folder``; a folder holding a single data file is the
    train split. Texts are stripped; examples with an empty text (or pair) are dropped and
    counted; a missing label (empty, ``NaN``) is an error. The label set comes from train
    (see :func:`~distillery.data.labels.label_ids`); label oddities are counted
    (:func:`~distillery.data.labels.oddities`).

    Returns:
        ``{"train": Split, "eval": Split}`` (no ``eval`` when the source lacks
        ``p.eval_split``), the label names (index = class id), and info for metrics.

    Raises:
        FileNotFoundError: ``folder`` or the train split is missing.
        ValueError: an unreadable file, a missing column, an empty split, bad labels.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} not found: run `dvc repro data` first")
    files = _split_files(folder)
    train_file = files.get(p.train_split)
    if train_file is None and len(files) == 1:
        train_file = next(iter(files.values()))  # a single-file source
    if train_file is None:
        raise UserError(
            f"no {p.train_split!r} split in {folder} (splits: {', '.join(files) or 'none'}): "
            "set data.train_split to one of them")
    eval_file = files.get(p.eval_split) if p.eval_split else None
    if eval_file == train_file:
        eval_file = None
    if eval_file is None:
        logger.info("no eval split %r in %s: one is carved from train", p.eval_split, folder)
    info: dict[str, Any] = {"train_file": train_file.name,
                            "eval_file": eval_file.name if eval_file else None}
    raw: dict[str, tuple[dict[str, list], list[str] | None]] = {}
    with tempfile.TemporaryDirectory(prefix="distillery-datasets-") as cache:
        for name, path in (("train", train_file), ("eval", eval_file)):
            if path is not None:
                raw[name] = _read_file(path, p, cache)
    splits: dict[str, Split] = {}
    values: dict[str, list] = {}
    for name, (columns, _) in raw.items():
        splits[name], values[name], info[f"{name}_empty_texts_dropped"] = _to_split(
            columns, p, train_file if name == "train" else eval_file)
        info[f"{name}_rows"] = len(columns[p.label_column])
    info.update(oddities(values))
    ids, names, info["label_type"] = label_ids(values, p.label_names, raw["train"][1])
    for name, split in splits.items():
        split.labels = ids[name]
    return splits, names, info


def _split_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.name == SOURCE_FILE or not f.is_file() or f.suffix.lower() not in FORMATS:
            continue
        if f.stem in files:
            raise UserError(f"{folder}: two files for split {f.stem!r} ({files[f.stem].name}, "
                             f"{f.name}); keep one")
        files[f.stem] = f
    return files


def _read_file(path: Path, p: DataParams, cache_dir: str) -> tuple[dict[str, list], list | None]:
    """Columns of one file as Python lists, and the label column's ClassLabel names if any."""
    import datasets

    kind = FORMATS[path.suffix.lower()]
    wanted = [c for c in (p.text_column, p.text_pair_column, p.label_column) if c]
    kwargs: dict[str, Any] = {}
    if kind in ("csv", "tsv"):
        sep = "\t" if kind == "tsv" else ","
        # Everything read as text: "null" / "NA" stay texts, "2010" stays "2010", and a
        # label column cannot change type from one chunk to the next.
        kwargs = {"sep": sep, "keep_default_na": False, "na_filter": False,
                  "converters": {c: str for c in _csv_header(path, sep, p.quoting)
                                 if c in wanted}}
        if kind == "tsv" and p.quoting == "none":
            kwargs["quoting"] = csv.QUOTE_NONE
    if _blank(path):  # datasets would fail with a bare StopIteration or "no data"
        raise UserError(f"{path.name} is empty (no header, no rows): put the split's examples "
                        "in it, or remove it")
    try:
        ds = datasets.load_dataset("csv" if kind == "tsv" else kind, data_files=str(path),
                                   split="train", cache_dir=cache_dir, **kwargs)
    except Exception as err:
        cause = err.__cause__ or err
        if isinstance(cause, UnicodeDecodeError):
            raise not_utf8(path, cause) from err
        tsv_rule = {"none": ", tab-separated, no quoting", "csv": ", tab-separated"}
        raise UserError(
            f"could not read {path.name} as {kind} ({type(cause).__name__}: {_reason(cause)}). "
            + ("Fix the file: one JSON object per line (jsonl) or a list of objects (json)"
               if kind == "json" else "Fix the file: a header row naming the columns")
            + (tsv_rule[p.quoting] if kind == "tsv" else "")
            + "; or give it the extension of its real format"
            + (_QUOTE_HINT if kind == "tsv" and _opens_quote(path, p.quoting) else "")) from err
    missing = [c for c in wanted if c not in ds.column_names]
    if missing:
        key = {p.text_column: "text_column", p.text_pair_column: "text_pair_column",
               p.label_column: "label_column"}
        raise UserError(
            f"{path.name}: no column " + ", ".join(f"{c!r} (data.{key[c]})" for c in missing)
            + "; its columns are: "
            + ", ".join(c if c and c.isprintable() and c == c.strip() else repr(c)
                        for c in ds.column_names))
    feature = ds.features[p.label_column]
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    return ds.select_columns(wanted).to_dict(), names


def _blank(path: Path) -> bool:
    """Whether ``path`` holds nothing but a byte-order mark and whitespace."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    return len(head) < 1 << 16 and not head.removeprefix(b"\xef\xbb\xbf").strip()


def _reason(err: BaseException) -> str:
    """``err`` in one line: ``datasets``' errors span paragraphs, with temp paths and links."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()
             and not line.startswith("An error occurred while generating the dataset")]
    text = lines[0] if lines else "no details"
    return text if len(text) <= 300 else text[:300] + "..."


def _csv_header(path: Path, sep: str, quoting: str = "none") -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f, _no_field_limit():
            if sep == "\t" and quoting == "none":
                return f.readline().rstrip("\r\n").split("\t")
            return next(csv.reader(f, delimiter=sep), [])
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    except csv.Error as err:
        raise UserError(f"{path.name}: the header row is not readable as csv ({err})") from None


def _to_split(columns: dict[str, list], p: DataParams, path: Path) -> tuple[Split, list, int]:
    """Stripped texts of the rows whose text (and pair) is not empty, their raw labels, and
    how many rows were dropped."""
    file = path.name
    texts = [_text(t) for t in columns[p.text_column]]
    pairs = [_text(t) for t in columns[p.text_pair_column]] if p.text_pair_column else None
    keep = [i for i, t in enumerate(texts) if t and (pairs is None or pairs[i])]
    dropped = len(texts) - len(keep)
    if dropped:
        logger.warning("%s: dropped %d example(s) with an empty text", file, dropped)
    if not keep:
        raise UserError(f"{file}: no examples (rows: {len(texts)}, all with an empty text); "
                         "check data.text_column" + (" and data.text_pair_column" if pairs else ""))
    labels = [columns[p.label_column][i] for i in keep]
    missing = [i for i, y in zip(keep, labels, strict=True) if missing_label(y)]
    if missing:
        raise _missing_labels(columns, p, path, missing)
    split = Split([texts[i] for i in keep], [-1] * len(keep),
                  None if pairs is None else [pairs[i] for i in keep])
    return split, labels, dropped


def _missing_labels(columns: dict[str, list], p: DataParams, path: Path,
                    rows: list[int]) -> UserError:
    """The error for rows without a label: an empty one, or ``NaN`` (a missing value as pandas
    writes it); in a tsv read without quoting, a field near the first such row that opens with
    a quote suggests ``data.quoting=csv``."""
    i = rows[0]
    y = columns[p.label_column][i]
    what = "empty label" if y is None or str(y).strip() == "" else f"label {y!r} (a missing value)"
    where = f"data row {i + 1}" + (f" and {len(rows) - 1} more" if len(rows) > 1 else "")
    msg = (f"{path.name}: {what} (data.label_column {p.label_column!r}) in {where}; every "
           "example needs a label: fill it in or delete the row")
    if FORMATS[path.suffix.lower()] == "tsv" and p.quoting == "none":
        near = [columns[c][j] for c in (p.text_column, p.text_pair_column, p.label_column) if c
                for j in range(max(0, i - 1), min(len(columns[c]), i + 2))]
        if any(isinstance(v, str) and v.lstrip().startswith('"') for v in near):
            msg += _QUOTE_HINT
    return UserError(msg)


_QUOTE_HINT = (". A field there opens with a double quote: if the file quotes its fields (a "
               "quoted field may span lines), set data.quoting=csv")


def _opens_quote(path: Path, quoting: str) -> bool:
    """Whether a field of the tsv ``path`` opens with a double quote (read without quoting)."""
    if quoting != "none":
        return False
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            return any(line.startswith('"') or '\t"' in line for line in f)
    except UnicodeDecodeError:
        return False


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
