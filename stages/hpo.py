"""Stage ``hpo``: LoRA fine-tuning of the teacher, hyperparameters found by GP-BO.

Each trial fine-tunes the pretrained teacher with LoRA on ``hpo.trial_examples`` training
examples for ``hpo.trial_epochs`` (cheap fidelity) and scores ``task.metric`` on the
validation split. The best
hyperparameters are then retrained on the whole train split for ``hpo.final_epochs``; the
adapter is merged and saved.

Deps: ``--data``, the teacher named by ``teacher.model``.
Params: ``teacher.*``, ``task.metric``, ``hpo.*``.
Outs: ``--out`` (merged teacher, ``save_pretrained`` folder with its tokenizer).
Plots: ``--history`` (CSV per trial: params, score, best so far), ``--png``.
Metrics: ``--metrics``: best hyperparameters, best trial score, the teacher's val score and
eval accuracy / macro-F1.
"""

from __future__ import annotations

import logging

from distillery import evaluate, hpo, lora, models, plots, training
from distillery.data import Split, load_prepared
from distillery.io import (
    Timer,
    atomic_path,
    run_main,
    seed_everything,
    stage_args,
    write_csv,
    write_json,
)
from distillery.params import HpoParams, TaskParams, TeacherParams, load_section

logger = logging.getLogger("stages.hpo")


def fine_tune(
    tp: TeacherParams, p: HpoParams, hp: lora.LoraHyper, train: Split, epochs: float, tok,
    names: list[str],
):
    """LoRA-fine-tune a fresh copy of the teacher; return the (unmerged) peft model."""
    seed_everything(p.seed)
    model = lora.apply_lora(models.load_classifier(tp.model, names), hp, p.target_modules)
    cfg = training.TrainConfig(lr=hp.lr, batch_size=p.batch_size, max_length=tp.max_length,
                               epochs=epochs, seed=p.seed)
    training.train(model, train, tok, cfg, desc=f"lora r={hp.rank}")
    return model


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "out", "history", "png", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "hpo", HpoParams)
    metric = load_section(args.params, "task", TaskParams).metric
    models.check_teacher(tp.model)
    splits, names = load_prepared(args.data)
    train, val, dev = splits["train"], splits["val"], splits["eval"]
    tok = models.load_tokenizer(tp.model)
    trial_train = train.subset(range(min(p.trial_examples, len(train))))

    def objective(hp: lora.LoraHyper) -> float:
        model = fine_tune(tp, p, hp, trial_train, p.trial_epochs, tok, names)
        return evaluate.evaluate(model, val, tok, tp.max_length, metric)

    space = hpo.Space(lr=tuple(p.lr), rank=tuple(p.rank), alpha=tuple(p.alpha),
                      dropout=tuple(p.dropout))
    with Timer() as timer:
        study = hpo.run(objective, space, p.sampler, p.n_trials, p.n_initial, p.seed)
        best = lora.LoraHyper(**study.best_trial.params)
        logger.info("best %s (trial score %.4f); retraining on all %d examples", best,
                    study.best_value, len(train))
        teacher = lora.merge(fine_tune(tp, p, best, train, p.final_epochs, tok, names))
    val_score = evaluate.evaluate(teacher, val, tok, tp.max_length, metric)
    t_eval = evaluate.scores(evaluate.predict_logits(teacher, dev, tok, tp.max_length),
                             dev.labels)
    with atomic_path(args.out) as tmp:
        teacher.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    rows = hpo.history(study)
    write_csv(args.history, rows)
    plots.hpo_trials(rows, args.png, p.n_initial if p.sampler == "gp" else 0, metric)
    write_json(args.metrics, {
        **{f"best_{k}": v for k, v in study.best_trial.params.items()},
        "metric": metric, "best_trial_score": study.best_value, "teacher_val_score": val_score,
        "teacher_eval_accuracy": t_eval["accuracy"],
        "teacher_eval_macro_f1": t_eval["macro_f1"],
        "n_trials": len(study.trials),
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("teacher: val %s %.4f, eval %s", metric, val_score, t_eval)


if __name__ == "__main__":
    run_main(main)
