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

import logging

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
    seed_everything,
    stage_args,
    write_csv,
    write_json,
)
from distillery.data.prepared import concat, load_prepared
from distillery.distill import student as student_mod
from distillery.distill import teacher_logits
from distillery.measure import evaluate, plots
from distillery.modeling import loading
from distillery.studies import ablation
from distillery.studies.params import KdStudyParams

logger = logging.getLogger("studies.kd_ablation")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "data", "arch", "teacher", "logits", "out",
                                "table", "png", "metrics"], argv)
    s = load_section(args.params, "kd_study", KdStudyParams)
    tp = load_section(args.main_params, "teacher", TeacherParams)
    d = load_section(args.main_params, "distill", DistillParams)
    metric = load_section(args.main_params, "task", TaskParams).metric
    genome = read_json(args.arch)["genome"]
    splits, names = load_prepared(args.data)
    dev = splits["eval"]
    corpus = concat(splits["train"], splits["transfer"])
    t_logits = teacher_logits.load_many(args.logits, splits, "train", "transfer")
    tok = loading.load_tokenizer(args.teacher)
    device = resolve_device(tp.device)
    rows, preds = [], {v: [] for v in s.variants}
    steps = 0
    with Timer() as timer:
        for seed in s.seeds:
            for variant in s.variants:
                p = ablation.variant_params(d, variant, seed, s.epochs)
                seed_everything(seed)
                teacher = loading.load_classifier(args.teacher)
                student, losses, layer_wise = student_mod.distil(
                    genome, teacher, teacher, tok, corpus, t_logits, p, tp.max_length, device,
                    desc=f"{variant} seed {seed}")
                logits = evaluate.predict_logits(student, dev, tok, tp.max_length)
                preds[variant].append(logits.argmax(-1))
                steps = len(losses)
                rows.append({"variant": variant, "seed": seed, "layer_wise": layer_wise,
                             "steps": steps,
                             **{k: round(v, 6) for k, v in evaluate.scores(logits,
                                                                            dev.labels).items()}})
                logger.info("%s", rows[-1])
    summary = ablation.summarise(dev.labels, preds, len(names), metric, s.resamples)
    write_csv(args.table, rows)
    plots.ablation(rows, args.png, metric)
    with atomic_path(args.out) as tmp:
        tmp.write_text(ablation.markdown(summary, metric, s.epochs, steps))
    write_json(args.metrics, {"metric": metric, **summary, "steps_per_run": steps,
                              "duration_s": round(timer.seconds, 2)})


if __name__ == "__main__":
    run_main(main)
