"""The ``data:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distillery.config.base import positive
from distillery.core.io import UserError

ROOT_ENV = "DVC_ROOT"
"""Set by DVC for stage commands to the repository's root: the user's repository also for
``dvc exp run --temp`` / ``--queue``, whose stages run in a copy under ``.dvc/tmp/exps``."""


@dataclass
class DataParams:
    """Where the raw labelled text comes from and which columns hold what.

    ``source`` is a local file or folder (csv / tsv / json / jsonl / parquet, read with
    ``datasets``' packaged builders; tsv = csv with a tab delimiter, quoting per ``quoting``) or a
    Hugging Face Hub dataset id (downloaded once by the ``data`` stage into ``data/raw``).
    A folder holds one file per split, named ``<split>.<ext>``; a single file is the train
    split.
    """

    source: str = "../shared/datasets/sst2"
    """Local file / folder (a relative path is taken from the repository root), or a Hub
    dataset id such as ``glue`` (with ``config: mrpc``)."""
    config: str | None = None
    """Hub dataset configuration (e.g. ``mrpc`` of ``glue``); null for local sources."""
    revision: str | None = None
    """Hub dataset only: the git revision (commit hash, tag or branch) to download, so a Hub
    run is reproducible; null = the default branch at download time. Changing it downloads
    again."""
    quoting: Literal["none", "csv"] = "none"
    """How ``.tsv`` files are read: ``none`` (GLUE style: a ``"`` is text, one line per row) or
    ``csv`` (a field in double quotes may hold tabs and line breaks, ``""`` is a quote, as in
    exported intent sets like Banking77). ``.csv`` files always use csv quoting."""
    text_column: str = "sentence"
    """Column with the text to classify (the first sentence of a pair)."""
    text_pair_column: str | None = None
    """Column with the second sentence of sentence-pair tasks (MRPC, QNLI, MNLI); null
    for single-sentence tasks."""
    label_column: str = "label"
    """Column with the labels: integers or strings, at least two classes."""
    label_names: list[str] | None = field(default_factory=lambda: ["negative", "positive"])
    """Names of integer labels 0..C-1 (null: the label values themselves, or the Hub
    dataset's ClassLabel names). Must be null for string labels."""
    train_split: str = "train"
    """Split the study trains on (its file stem in a folder source)."""
    eval_split: str | None = "dev"
    """Held-out evaluation split; null (or a split the source lacks) carves a stratified,
    seeded one of ``eval_size`` examples out of train."""
    eval_size: int = 1000
    """Examples carved from train when there is no eval split."""
    seed: int = 0
    """Seed of the carved eval split (``eval_split`` null), kept apart from ``prepare.seed``."""

    def check(self) -> list[str]:
        out = positive(self, "eval_size")
        for name in ("source", "text_column", "label_column", "train_split"):
            if not getattr(self, name).strip():
                out.append(f"{name}: got {getattr(self, name)!r}, must not be empty")
        if self.revision is not None and not self.revision.strip():
            out.append("revision: must not be empty; null = the default branch")
        if self.text_pair_column is not None and self.text_pair_column in (
            self.text_column, self.label_column
        ):
            out.append(f"text_pair_column: got {self.text_pair_column!r}, which is already "
                       "the text or label column")
        if self.text_column == self.label_column:
            out.append(f"label_column: got {self.label_column!r}, same as text_column")
        if self.label_names is not None:
            names = self.label_names
            if len(names) < 2 or len(set(names)) != len(names) or not all(map(str.strip, names)):
                out.append(f"label_names: got {names!r}, expected null or at least two distinct, "
                           "non-blank names")
        if self.eval_split is not None and self.eval_split == self.train_split:
            out.append(f"eval_split: got {self.eval_split!r}, same as train_split")
        return out

    def local_source(self) -> Path | None:
        """``source`` as an existing local path, or None for a Hub dataset id.

        A relative path is taken from the repository root (``$DVC_ROOT``; outside DVC the
        working directory), so that experiments run in a temporary copy of the repository
        find the same files.

        Raises:
            UserError: ``source`` looks like a path (``.``, ``/`` or ``~`` first, a file
                extension, or more than one ``/``) but nothing is there.
        """
        root = Path(os.environ.get(ROOT_ENV) or ".")
        path = root / Path(self.source).expanduser()  # an absolute path stays as is
        if path.exists():
            return path
        if self.source[0] in "./~" or Path(self.source).suffix or self.source.count("/") > 1:
            raise UserError(f"data.source: got {self.source!r}, and {path.resolve()} does not "
                            "exist (a relative path is taken from the repository root, "
                            f"{root.resolve()}); point data.source at a local file or folder, "
                            "or at a Hugging Face Hub dataset id")
        return None
