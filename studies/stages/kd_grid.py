"""Study stage ``kd_grid``: the pipeline's distillation over an alpha x temperature grid.

The pipeline's student (``--arch``) is trained from the fine-tuned teacher as stage
``distill`` trains it, with the ``kd_grid.variant`` recipe, once per cell of
``kd_grid.alpha`` x ``kd_grid.temperature`` and seed of ``kd_grid.seeds``, and scored on the
eval split. Every cell is compared with the pipeline's own (``distill.alpha``,
``distill.temperature``; added to the grid if missing): mean difference over seeds with a 95%
bootstrap interval over the eval examples (:mod:`distillery.studies.ablation`).

Deps: ``--data``, ``--arch``, ``--teacher``, ``--logits`` (the pipeline's stage ``label``).
Params: ``kd_grid.*``; ``teacher``, ``task``, ``distill`` of ``--main-params``.
Outs: ``--out`` (Markdown tables), ``--png`` (heat map). Plots: ``--table`` (CSV, one row
per run). Metrics: ``--metrics``: per cell mean / min / max, per contrast difference and
interval.
"""

from __future__ import annotations

import dataclasses
import itertools

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
from distillery.studies.params import KdGridParams


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "data", "arch", "teacher", "logits", "out",
                                "table", "png", "metrics"], argv)
    s = load_section(args.params, "kd_grid", KdGridParams)
    tp = load_section(args.main_params, "teacher", TeacherParams)
    d = load_section(args.main_params, "distill", DistillParams)
    metric = load_section(args.main_params, "task", TaskParams).metric
    cells = list(dict.fromkeys([*itertools.product(s.alpha, s.temperature),
                                (d.alpha, d.temperature)]))
    base = ablation.variant_params(d, s.variant, 0, s.epochs)
    runs = [(ablation.cell(a, t), dataclasses.replace(base, alpha=a, temperature=t,
                                                               seed=seed))
            for seed in s.seeds for a, t in cells]
    with Timer() as timer:
        rows, preds, steps = ablation.train_runs(
            runs, read_json(args.arch)["genome"], args.teacher, args.data, args.logits,
            tp.max_length, resolve_device(tp.device))
    splits, names = load_prepared(args.data)
    reference = ablation.cell(d.alpha, d.temperature)
    contrasts = [(ablation.cell(a, t), reference) for a, t in cells
                 if ablation.cell(a, t) != reference]
    summary = ablation.summarise(splits["eval"].labels, preds, len(names), metric, s.resamples,
                                 contrasts=contrasts)
    write_csv(args.table, rows)
    plots.kd_grid(rows, args.png, metric)
    with atomic_path(args.out) as tmp:
        tmp.write_text(ablation.grid_markdown(summary, metric, s.epochs, steps, reference,
                                              s.variant))
    write_json(args.metrics, {"metric": metric, **summary, "steps_per_run": steps,
                              "duration_s": round(timer.seconds, 2)})


if __name__ == "__main__":
    run_main(main)
