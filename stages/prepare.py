"""Stage ``prepare``: stratified, seeded subsample of SST-2.

Deps: ``--raw`` (GLUE ``train.tsv``, ``dev.tsv``).
Params: ``prepare.*``.
Outs: ``--out`` with ``train.tsv`` (labelled subsample), ``val.tsv`` (model selection,
carved from train), ``transfer.tsv`` (unlabelled train sentences for distillation) and
``eval.tsv`` (all of GLUE dev, the held-out evaluation split).
Metrics: ``--metrics``: counts and positive-label fraction per split, duration.
"""

from __future__ import annotations

import logging
from pathlib import Path

from distillery.data import label_balance, make_splits, read_tsv, write_tsv
from distillery.io import Timer, atomic_path, stage_args, write_json
from distillery.params import PrepareParams, load_section

logger = logging.getLogger("stages.prepare")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["raw", "out", "metrics"], argv)
    p = load_section(args.params, "prepare", PrepareParams)
    with Timer() as timer:
        train = read_tsv(Path(args.raw) / "train.tsv")
        dev = read_tsv(Path(args.raw) / "dev.tsv")
        splits = make_splits(train, p.n_train, p.n_val, p.n_transfer, p.seed)
        splits["eval"] = dev
        with atomic_path(args.out) as tmp:
            tmp.mkdir()
            for name, split in splits.items():
                write_tsv(tmp / f"{name}.tsv", split)
    metrics: dict[str, float] = {}
    for name, split in splits.items():
        metrics[f"{name}_count"] = len(split)
        if name != "transfer":
            metrics[f"{name}_positive_fraction"] = round(label_balance(split), 4)
    metrics["duration_s"] = round(timer.seconds, 2)
    write_json(args.metrics, metrics)
    logger.info("prepared splits: %s", metrics)


if __name__ == "__main__":
    main()
