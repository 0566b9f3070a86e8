"""Study stage ``proxy_calibration``: rank agreement of NAS proxies with a reference training.

``proxy_study.n_archs`` random architectures of ``proxy_study.search_space`` (null: the
pipeline's ``nas.search_space``) are trained as the NAS stage's proxy does (``ce`` or ``kd``,
each budget of ``proxy_study.budgets``) and once as the reference (distillation from the
fine-tuned teacher on train + transfer for ``proxy_study.reference_steps`` steps, the final
student's recipe); Kendall's tau and Spearman's rho of every proxy against the reference, with
its cost.

Deps: ``--data``, ``--teacher`` (the pipeline's fine-tuned teacher), ``--logits`` (its logits,
the pipeline's stage ``label``).
Params: ``proxy_study.*``; ``teacher``, ``task``, ``nas``, ``distill`` of ``--main-params``.
Outs: ``--out`` (CSV: every training run). Plots: ``--table`` (CSV per proxy), ``--png``.
Metrics: ``--metrics``: tau / rho / cost share per proxy, the cheapest proxy with tau >= 0.8.
"""

from __future__ import annotations

import dataclasses
import logging

from tqdm.auto import tqdm

from distillery import nas
from distillery.config.base import load_section
from distillery.config.distill import DistillParams
from distillery.config.nas import NasParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import Timer, run_main, stage_args, write_csv, write_json
from distillery.data.prepared import Split, load_prepared
from distillery.distill import teacher_logits
from distillery.measure import plots
from distillery.modeling import loading
from distillery.studies import calibration
from distillery.studies.params import ProxyStudyParams

logger = logging.getLogger("studies.proxy_calibration")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "data", "teacher", "logits", "out", "table",
                                "png", "metrics"], argv)
    s = load_section(args.params, "proxy_study", ProxyStudyParams)
    tp = load_section(args.main_params, "teacher", TeacherParams)
    p = load_section(args.main_params, "nas", NasParams)
    d = load_section(args.main_params, "distill", DistillParams)
    metric = load_section(args.main_params, "task", TaskParams).metric
    splits, names = load_prepared(args.data)
    train, transfer = splits["train"], splits["transfer"]
    teacher = loading.load_classifier(args.teacher, names)
    tok = loading.load_tokenizer(args.teacher)
    pairs = None if train.pairs is None else train.pairs + (transfer.pairs or [])
    corpus = Split(train.texts + transfer.texts, train.labels + transfer.labels, pairs)
    logits = teacher_logits.load_many(args.logits, splits, "train", "transfer")
    space = s.space(p.search_space)
    archs = calibration.architectures(dataclasses.asdict(space), s.n_archs, s.seed)

    def task(split, steps, kd_logits, lr, batch_size):
        return nas.ProxyTask(
            teacher=teacher, tokenizer=tok, train=split, val=splits["val"],
            max_length=tp.max_length, steps=steps, batch_size=batch_size, lr=lr,
            init_from_teacher=p.init_from_teacher, metric=metric,
            seed=p.seed, kd_logits=kd_logits, kd_alpha=d.alpha, kd_temperature=d.temperature)

    runs, reference = [], {}
    bar = tqdm(total=len(archs) * (len(s.budgets) * len(s.proxies) + 1), desc="trainings")
    with Timer() as timer:
        for genome in archs:
            _, info = task(corpus, s.reference_steps, logits, d.lr, d.batch_size)(genome)
            reference[nas.key(genome)] = info["score"]
            runs.append({"proxy": "reference", "steps": s.reference_steps, "genome": genome,
                         "score": info["score"], "train_s": info["train_s"]})
            bar.update()
            for proxy in s.proxies:
                kd = logits[: len(train)] if proxy == "kd" else None
                for steps in s.budgets:
                    _, info = task(train, steps, kd, p.lr, p.batch_size)(genome)
                    runs.append({"proxy": proxy, "steps": steps, "genome": genome,
                                 "score": info["score"], "train_s": info["train_s"]})
                    bar.update()
    bar.close()
    ref_cost = sum(r["train_s"] for r in runs if r["proxy"] == "reference")
    rows = calibration.table([r for r in runs if r["proxy"] != "reference"], reference, ref_cost)
    write_csv(args.out, [{"proxy": r["proxy"], "steps": r["steps"], **r["genome"],
                          "score": r["score"], "train_s": r["train_s"]} for r in runs])
    write_csv(args.table, rows)
    plots.proxy_calibration(rows, args.png)
    good = [r for r in rows if r["kendall_tau"] >= 0.8 and r["cost_share"] <= 0.10]
    best = max(rows, key=lambda r: (r["kendall_tau"], -r["cost_share"]))
    write_json(args.metrics, {
        **{f"{r['proxy']}_{r['steps']}_{k}": r[k] for r in rows
           for k in ("kendall_tau", "spearman_rho", "cost_share")},
        "n_archs": len(archs), "reference_steps": s.reference_steps,
        "target_met": bool(good),
        "cheapest_good": min(good, key=lambda r: r["cost_share"]) if good else None,
        "best_tau": best, "duration_s": round(timer.seconds, 2),
    })
    logger.info("calibration:\n%s", "\n".join(str(r) for r in rows))


if __name__ == "__main__":
    run_main(main)
