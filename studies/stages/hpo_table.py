"""Study stage ``hpo_table``: score a fixed set of LoRA configurations once, at the trial
fidelity of the pipeline's ``hpo`` stage (the expensive part of the sampler comparison).

The configurations are a Latin hypercube of ``hpo``'s search space. Trials live in an Optuna
journal kept out of ``dvc exp run``'s checkout (:mod:`distillery.search.resume`) and
copied to ``--trials`` at the end: a killed run resumes. A few configurations are then
retrained with another seed (``hpo_study.live_checks``) to show how far a table score is from
a fresh trial's.

Deps: ``--data`` (the pipeline's prepared splits), the teacher named by ``teacher.model``.
Params: ``hpo_study.*``; ``teacher``, ``task``, ``hpo`` of ``--main-params``.
Outs: ``--trials``, ``--out`` (CSV: configuration, score).
Metrics: ``--metrics``: table size, best / median score, live-check differences.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from distillery.config.base import load_section
from distillery.config.hpo import HpoParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import Timer, fingerprint, run_main, stage_args, write_csv, write_json
from distillery.data.prepared import load_prepared
from distillery.measure import evaluate
from distillery.modeling import loading
from distillery.search import resume, runner
from distillery.studies.params import HpoStudyParams
from distillery.teachers import hpo

logger = logging.getLogger("studies.hpo_table")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "data", "trials", "out", "metrics"], argv)
    s = load_section(args.params, "hpo_study", HpoStudyParams)
    tp = load_section(args.main_params, "teacher", TeacherParams)
    p = load_section(args.main_params, "hpo", HpoParams)
    metric = load_section(args.main_params, "task", TaskParams).metric
    # the LoRA space of the HPO study this comes from (the head at the adapters' rate); every
    # configuration trained in full
    fixed = dataclasses.replace(p, sampler="random", n_trials=s.n_configs, n_initial=0,
                                workers=1, method=["lora"], pruner="none", head_lr=None)
    space = hpo.search_space(fixed)
    configs = space.latin_hypercube(s.n_configs, s.seed)
    name = runner.study_name("hpo-table", {"configs": configs, "teacher": tp, "metric": metric,
                                           "hpo": dataclasses.replace(fixed, n_trials=0),
                                           "data": fingerprint(args.data)})
    storage = resume.kept(args.trials, name)  # not rolled back by dvc exp run
    study = runner.load(storage, name)
    runner.prepare(study, configs, journal=True)
    with Timer() as timer:
        hpo.Trials(tp, fixed, metric, args.data, storage, name)(0)
        resume.publish(storage, args.trials)
    trials = runner.finished_trials(study)
    rows = [{**{n: t.params[n] for n in space.names}, "score": t.value} for t in trials]
    write_csv(args.out, rows)

    # live checks: configurations spread over the ranking, retrained with another seed
    splits, names = load_prepared(args.data)
    tok = loading.load_tokenizer(tp.model, tp.revision)
    trial_train = splits["train"].subset(range(hpo.trial_size(p, len(splits["train"]))))
    epochs = hpo.run_epochs(p, len(splits["train"]), len(names))
    order = np.argsort([-r["score"] for r in rows])
    picks = [int(order[int(i)]) for i in np.linspace(0, len(rows) - 1, s.live_checks).round()]
    reseeded = dataclasses.replace(fixed, seed=p.seed + 1)
    checks = []
    for i in picks:
        model = hpo.fine_tune(tp, reseeded, hpo.recipe(rows[i], fixed), trial_train, epochs,
                              tok, names)
        live = evaluate.evaluate(model, splits["val"], tok, tp.max_length, metric)
        checks.append({"table": rows[i]["score"], "live": live})
        logger.info("live check %s: table %.4f, live (seed + 1) %.4f", rows[i], rows[i]["score"],
                    live)
    diffs = [abs(c["table"] - c["live"]) for c in checks]
    scores = [r["score"] for r in rows]
    write_json(args.metrics, {
        "n_configs": len(rows), "metric": metric, "best": max(scores),
        "median": float(np.median(scores)), "worst": min(scores),
        "live_checks": checks, "live_abs_diff_max": max(diffs) if diffs else None,
        "live_abs_diff_mean": float(np.mean(diffs)) if diffs else None,
        "duration_s": round(timer.seconds, 2),
    })


if __name__ == "__main__":
    run_main(main)
