"""Stage ``compress``: global magnitude pruning of the student, made permanent.

After pruning, an optional recovery fine-tune (mask fixed) distils from the teacher on the
labelled train split: ``kd_alpha * CE + (1 - kd_alpha) * T^2 * KL``.

Deps: ``--data``, ``--student``, ``--teacher``.
Params: ``teacher.max_length``, ``task.metric``, ``compress.*``.
Outs: ``--out`` (pruned student, ``save_pretrained`` folder with tokenizer); ``--curves``
(DVCLive folder: loss and validation score during recovery).
Metrics: ``--metrics``: target and achieved sparsity, eval score (``task.metric``) before,
right after pruning and after recovery, eval accuracy / macro-F1 at the end, duration.
"""

from __future__ import annotations

import logging

from distillery import curves, distill, evaluate, models, prune, training
from distillery.data import load_prepared
from distillery.io import Timer, atomic_path, run_main, seed_everything, stage_args, write_json
from distillery.params import CompressParams, TaskParams, TeacherParams, load_section

logger = logging.getLogger("stages.compress")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "student", "teacher", "out", "metrics", "curves"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "compress", CompressParams)
    metric = load_section(args.params, "task", TaskParams).metric
    seed_everything(p.seed)
    splits, _ = load_prepared(args.data)
    train, val, dev = splits["train"], splits["val"], splits["eval"]
    model = models.load_classifier(args.student)
    tok = models.load_tokenizer(args.student)
    before = evaluate.evaluate(model, dev, tok, tp.max_length, metric)
    with Timer() as timer:
        prune.apply_global_magnitude(model, p.sparsity)
        pruned_score = evaluate.evaluate(model, dev, tok, tp.max_length, metric)
        if p.recovery_steps:
            teacher = models.load_classifier(args.teacher)
            t_logits = evaluate.predict_logits(teacher, train, tok, tp.max_length, 128)
            models.freeze_word_embeddings(model)
            cfg = training.TrainConfig(lr=p.lr, batch_size=p.batch_size,
                                       max_length=tp.max_length, steps=p.recovery_steps,
                                       seed=p.seed)
            loss = distill.kd_loss_fn(t_logits, p.kd_alpha, p.kd_temperature)
            with curves.Curve(args.curves, val, tok, tp.max_length, metric,
                              p.recovery_steps) as curve:
                training.train(model, train, tok, cfg, loss, desc="recovery", on_step=curve)
        prune.make_permanent(model)
    final = evaluate.scores(evaluate.predict_logits(model, dev, tok, tp.max_length), dev.labels)
    after = final[metric]
    with atomic_path(args.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    write_json(args.metrics, {
        "target_sparsity": p.sparsity, "achieved_sparsity": prune.sparsity(model),
        "metric": metric, "eval_score_before": before, "eval_score_pruned": pruned_score,
        "eval_score_after": after, **{f"eval_{k}": v for k, v in final.items()},
        "recovery_steps": p.recovery_steps,
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("sparsity %.3f: eval %s %.4f -> %.4f (after recovery %.4f)",
                prune.sparsity(model), metric, before, pruned_score, after)


if __name__ == "__main__":
    run_main(main)
