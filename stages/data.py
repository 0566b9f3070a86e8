"""Stage ``data``: make the raw labelled text of ``data.source`` available in one folder.

A local file or folder (csv / tsv / json / jsonl / parquet) is copied byte for byte (files
left alone when already identical); a Hugging Face Hub dataset id is downloaded once with
``datasets`` and saved as ``<split>.parquet`` plus ``source.json``. Cheap by design: it runs
on every ``dvc repro`` (``always_changed``) so an edited local file is noticed, and later
stages rerun only when the folder's content changed.

Params: ``data.source``, ``data.config``.
Outs: ``--out`` folder (persisted: a Hub download is not repeated).
Metrics: ``--metrics``: origin (local / hub), source, number of files, rows per split file.
"""

from __future__ import annotations

import logging

from distillery.config.base import load_section
from distillery.config.data import DataParams
from distillery.core.io import run_main, stage_args, write_json
from distillery.data.sources import materialise

logger = logging.getLogger("stages.data")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["out", "metrics"], argv)
    p = load_section(args.params, "data", DataParams)
    metrics = materialise(p, args.out)
    write_json(args.metrics, metrics)
    logger.info("raw data: %s", metrics)


if __name__ == "__main__":
    run_main(main)
