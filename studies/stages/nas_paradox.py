"""Study stage ``nas_paradox``: the NAS study's under-training paradox in its own setting.

Students of the teacher's family (``paradox_study.num_hidden_layers`` x ``hidden_size``,
BERT's head size and FFN ratio) are trained from scratch on the prepared train split with
hard labels for the short and the long budget of ``paradox_study.steps``, once per seed, and
scored on the eval split; :mod:`distillery.studies.paradox` compares the two rankings.

Only the teacher's config and tokenizer are read (no weights). Runs go to
``paradox_study.workers`` processes; ``teacher.device`` picks the device (on a 2-core CPU the
default grid takes hours: run it where a GPU is).

Deps: ``--data`` (prepared splits), ``--teacher`` (its config and tokenizer).
Params: ``paradox_study.*``; ``teacher.device``, ``teacher.max_length``, ``task.metric`` of
``--main-params``.
Outs: ``--out`` (Markdown), ``--png``. Plots: ``--table`` (CSV, one row per run).
Metrics: ``--metrics``: the taus and the pair's differences with their intervals.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from tqdm.auto import tqdm

from distillery.config.base import load_section
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.device import resolve_device
from distillery.core.io import Timer, atomic_path, run_main, stage_args, write_csv, write_json
from distillery.data.prepared import load_prepared
from distillery.measure import plots
from distillery.studies import paradox
from distillery.studies.params import ParadoxStudyParams

logger = logging.getLogger("studies.nas_paradox")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "data", "teacher", "out", "table", "png",
                                "metrics"], argv)
    s = load_section(args.params, "paradox_study", ParadoxStudyParams)
    tp = load_section(args.main_params, "teacher", TeacherParams)
    metric = load_section(args.main_params, "task", TaskParams).metric
    if metric != "accuracy":
        logger.warning("the study ranks by accuracy (task.metric is %s)", metric)
    device = str(resolve_device(tp.device))
    genomes = paradox.architectures(s.num_hidden_layers, s.hidden_size, s.head_size,
                                    s.ffn_ratio)
    runs = [paradox.Run(tuple(g.items()), seed, steps)
            for g in genomes for seed in s.seeds for steps in s.steps]
    runs.sort(key=lambda r: -r.steps)  # long runs first: the pool ends evenly
    train = functools.partial(paradox.train_one, config_dir=args.teacher, data_dir=args.data,
                              lr=s.lr, batch_size=s.batch_size, max_length=tp.max_length,
                              device=device)
    results = {}
    with Timer() as timer:
        if s.workers > 1:
            with ProcessPoolExecutor(s.workers, mp_context=get_context("spawn")) as pool:
                for run, out in tqdm(zip(runs, pool.map(train, runs), strict=True),
                                     total=len(runs), desc="paradox runs"):
                    results[run] = out
        else:
            for run in tqdm(runs, desc="paradox runs"):
                results[run] = train(run)
    splits, _ = load_prepared(args.data)
    labels = np.asarray(splits["eval"].labels)
    names = [paradox.arch_name(g) for g in genomes]
    correct = np.zeros((len(genomes), len(s.seeds), 2, len(labels)), dtype=bool)
    rows = []
    for run, out in results.items():
        a = names.index(paradox.arch_name(dict(run.genome)))
        preds = np.asarray(out["preds"])
        correct[a, s.seeds.index(run.seed), s.steps.index(run.steps)] = preds == labels
        rows.append({"arch": names[a], **dict(run.genome), "seed": run.seed,
                     "steps": run.steps, "n_params": out["n_params"],
                     "accuracy": round(float((preds == labels).mean()), 6),
                     "train_s": out["train_s"]})
    n_params = [next(r["n_params"] for r in rows if r["arch"] == n) for n in names]
    result = paradox.analyse(labels, correct, n_params, names, tuple(s.pair), s.resamples)
    rows.sort(key=lambda r: (r["n_params"], r["seed"], r["steps"]))
    write_csv(args.table, rows)
    plots.paradox([{**r, "short_steps": s.steps[0], "long_steps": s.steps[1]}
                   for r in result["per_arch"]], args.png)
    setting = (f"{len(genomes)} students ({', '.join(names)}; heads of {s.head_size}, FFN "
               f"{s.ffn_ratio}x) trained from scratch with hard labels on the prepared train "
               f"split ({len(splits['train'])} examples, batch {s.batch_size}, lr {s.lr:g}), "
               f"seeds {s.seeds}, on {device}; eval accuracy on {len(labels)} examples; "
               f"{round(timer.seconds)} s in all.")
    with atomic_path(args.out) as tmp:
        tmp.write_text(paradox.markdown(result, s.steps[0], s.steps[1], len(s.seeds),
                                        tuple(s.pair), setting))
    write_json(args.metrics, {**{k: v for k, v in result.items() if k != "per_arch"},
                              "device": device, "runs": len(rows),
                              "duration_s": round(timer.seconds, 2)})
    logger.info("tau(short, long) = %s", result["tau_short_long"])


if __name__ == "__main__":
    run_main(main)
