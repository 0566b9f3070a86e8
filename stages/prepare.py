"""Stage ``prepare``: labelled, deduplicated, stratified splits of the raw source.

Reads the train (and eval) split of ``--raw`` with ``datasets``, maps labels to class ids
(the label set comes from train), drops empty texts, duplicates and train examples that are
also in eval, carves an eval split from train when the source has none, then draws seeded,
stratified ``train`` and ``val`` splits and an unlabelled ``transfer`` split.

Deps: ``--raw`` (output of stage ``data``).
Params: ``data.*``, ``prepare.*``.
Outs: ``--out`` with ``train.jsonl`` (labelled subsample), ``val.jsonl`` (model selection),
``transfer.jsonl`` (unlabelled train texts the teacher labels for distillation), ``eval.jsonl``
(the held-out evaluation split) and ``labels.json`` (class names, whether inputs are pairs).
Metrics: ``--metrics``: examples per split, classes and the smallest class's train count,
pair, empty texts / duplicates / train-eval overlap dropped, label oddities (duplicates with
conflicting labels, labels that read like a missing value, numbers mixed with words; each also
warned about once), eval_carved, duration (figures to compare across runs, whatever the number
of classes).
Plots: ``--class-counts`` (CSV: class, train, val, eval examples).
"""

from __future__ import annotations

import logging

from distillery.config.base import load_section
from distillery.config.data import DataParams
from distillery.config.prepare import PrepareParams
from distillery.core.io import Timer, atomic_path, run_main, stage_args, write_csv, write_json
from distillery.data.prepared import class_counts, write_labels, write_split
from distillery.data.sources import load_raw
from distillery.data.splits import make_splits

logger = logging.getLogger("stages.prepare")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["raw", "out", "metrics", "class-counts"], argv)
    d = load_section(args.params, "data", DataParams)
    p = load_section(args.params, "prepare", PrepareParams)
    with Timer() as timer:
        raw, names, info = load_raw(args.raw, d)
        splits, counts = make_splits(raw["train"], raw.get("eval"), p.n_train, p.n_val,
                                     p.n_transfer, d.eval_size, p.seed, eval_seed=d.seed)
        pair = d.text_pair_column is not None
        with atomic_path(args.out) as tmp:
            tmp.mkdir()
            for name, split in splits.items():
                write_split(tmp / f"{name}.jsonl", split)
            write_labels(tmp / "labels.json", names, pair)
    per_class = {s: class_counts(splits[s], len(names)) for s in ("train", "val", "eval")}
    write_csv(args.class_counts, [{"class": c, **{s: n[i] for s, n in per_class.items()}}
                                  for i, c in enumerate(names)])
    metrics: dict = {f"{name}_count": len(split) for name, split in splits.items()}
    metrics.update(
        n_classes=len(names),
        min_train_class_count=min(per_class["train"]),
        label_type=info["label_type"],
        pair=pair,
        empty_texts_dropped=info["train_empty_texts_dropped"]
        + info.get("eval_empty_texts_dropped", 0),
        duplicates_dropped=counts["duplicates_dropped"],
        conflicting_duplicates=counts["conflicting_duplicates"],
        labels_missing_like=info["labels_missing_like"],
        labels_mixed_numeric_words=info["labels_mixed_numeric_words"],
        train_eval_overlap_dropped=counts["overlap_dropped"],
        val_related_to_train_excluded=counts["val_related_to_train_excluded"],
        transfer_related_to_val_excluded=counts["transfer_related_to_val_excluded"],
        eval_carved=counts["eval_carved"],
        duration_s=round(timer.seconds, 2),
    )
    write_json(args.metrics, metrics)
    logger.info("prepared %s", {k: v for k, v in metrics.items() if k.endswith("_count")})


if __name__ == "__main__":
    run_main(main)
