"""Study stage ``kd_ablation``: what distillation buys, over several seeds.

The pipeline's student (``--arch``, the NAS result) is trained from the fine-tuned teacher as
stage ``distill`` trains it (:func:`distillery.distill.student.distil`), once per variant of
``kd_study.variants`` and seed of ``kd_study.seeds``: ``no_kd`` (hard labels only),
``logits`` (response-based KD) and ``layer_wise`` (the default: logits + TinyBERT terms);
each scored on the eval split. Contrasts: mean difference over seeds with a 95% bootstrap
interval over the eval examples (:mod:`distillery.studies.ablation`).

Deps: ``--data``, ``--arch``, ``--teacher``, ``--logits`` (the pipeline's stage ``label``).
Params: ``kd_study.*``; ``teacher``, ``task``, ``distill`` of ``--main-params``.
Outs: ``--out`` (Markdown tables). Plots: ``--table`` (CSV, one row per run), ``--png``.
Metrics: ``--metrics``: per variant mean / min / max, per contrast difference and interval.
"""

from __future__ import annotations

from distillery.config.base import load_section
from distillery.config.distill import DistillParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.device import resolve_device
from distillery.core.io import (
    Timer,
    atomic_path,
    read_json,
    run_main,
    stage_args,
    write_csv,
    write_json,
)
from distillery.data.prepared import load_prepared
from distillery.measure import plots
from distillery.studies import ablation
from distillery.studies.params import KdStudyParams


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "data", "arch", "teacher", "logits", "out",
                                "table", "png", "metrics"], argv)
    s = load_section(args.params, "kd_study", KdStudyParams)
    tp = load_section(args.main_params, "teacher", TeacherParams)
    d = load_section(args.main_params, "distill", DistillParams)
    metric = load_section(args.main_params, "task", TaskParams).metric
    runs = [(variant, ablation.variant_params(d, variant, seed, s.epochs))
            for seed in s.seeds for variant in s.variants]
    with Timer() as timer:
        rows, preds, steps = ablation.train_runs(
            runs, read_json(args.arch)["genome"], args.teacher, args.data, args.logits,
            tp.max_length, resolve_device(tp.device))
    splits, names = load_prepared(args.data)
    summary = ablation.summarise(splits["eval"].labels, preds, len(names), metric, s.resamples)
    write_csv(args.table, rows)
    plots.ablation(rows, args.png, metric)
    with atomic_path(args.out) as tmp:
        tmp.write_text(ablation.markdown(summary, metric, s.epochs, steps))
    write_json(args.metrics, {"metric": metric, **summary, "steps_per_run": steps,
                              "duration_s": round(timer.seconds, 2)})


if __name__ == "__main__":
    run_main(main)
