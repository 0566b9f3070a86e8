"""Stage ``distill``: train the NAS-chosen student from the fine-tuned teacher.

The teacher's logits on the labelled train split and the unlabelled transfer split come from
stage ``label`` (computed once for every stage that distils); the student, built in the
family of ``distill.student_init``'s model (the teacher's, or ``distill.student_model`` for a
causal-LM teacher) with its tokenizer and initialised from it where shapes allow, minimises
``alpha * CE(labelled rows) + (1 - alpha) * T^2 * KL`` plus, when their weights are > 0,
TinyBERT's layer-wise terms (hidden-state MSE through a learned projection, attention KL):
see :mod:`distillery.distill.losses`. Models train on ``teacher.device``.

Deps: ``--data``, ``--arch`` (NAS result), ``--teacher`` (merged LoRA teacher: the student's
initialisation, and run on each batch for layer-wise KD only), ``--logits`` (stage ``label``).
Params: ``teacher.max_length``, ``task.metric``, ``distill.*``.
Outs: ``--out`` (student, ``save_pretrained`` folder with tokenizer and label names);
``--curves`` (DVCLive folder: training loss and validation score during training).
Metrics: ``--metrics``: student val score, eval accuracy / macro-F1 of student and teacher,
agreement with the teacher on eval, parameter counts, duration.
"""

from __future__ import annotations

import logging

import numpy as np

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
    write_json,
)
from distillery.data.prepared import concat, load_prepared
from distillery.distill import student as student_mod
from distillery.distill import teacher_logits
from distillery.measure import curves, evaluate
from distillery.modeling import loading

logger = logging.getLogger("stages.distill")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "arch", "teacher", "logits", "out", "metrics", "curves"],
                      argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "distill", DistillParams)
    metric = load_section(args.params, "task", TaskParams).metric
    genome = read_json(args.arch)["genome"]
    seed_everything(p.seed)
    splits, names = load_prepared(args.data)
    train, transfer, val, dev = (splits[s] for s in ("train", "transfer", "val", "eval"))
    base_spec = loading.student_base(p.student_init, p.student_model, args.teacher,
                                     p.student_revision)
    teacher = loading.load_classifier(args.teacher)
    base, tok = (teacher, loading.load_tokenizer(args.teacher)) if base_spec == args.teacher \
        else (loading.load_classifier(base_spec, names), loading.load_tokenizer(base_spec))
    device = resolve_device(tp.device)
    corpus = concat(train, transfer)
    t_logits = teacher_logits.load_many(args.logits, splits, "train", "transfer")
    steps = student_mod.train_config(p, tp.max_length).total_steps(len(corpus))
    with Timer() as timer, curves.Curve(args.curves, val, tok, tp.max_length, metric,
                                        steps) as curve:
        student, step_losses, layer_wise = student_mod.distil(
            genome, teacher, base, tok, corpus, t_logits, p, tp.max_length, device,
            on_step=curve)
    s_dev = evaluate.predict_logits(student, dev, tok, tp.max_length)
    t_dev = teacher_logits.load(args.logits, "eval", dev)
    with atomic_path(args.out) as tmp:
        student.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    s_scores, t_scores = evaluate.scores(s_dev, dev.labels), evaluate.scores(t_dev, dev.labels)
    write_json(args.metrics, {
        "metric": metric,
        "student_val_score": evaluate.evaluate(student, val, tok, tp.max_length, metric),
        **{f"student_eval_{k}": v for k, v in s_scores.items()},
        **{f"teacher_eval_{k}": v for k, v in t_scores.items()},
        "eval_agreement_with_teacher": float((s_dev.argmax(-1) == t_dev.argmax(-1)).mean()),
        "student_n_params": loading.count_params(student),
        "teacher_n_params": loading.count_params(teacher),
        "alpha": p.alpha, "hidden_weight": p.hidden_weight, "student_init": p.student_init,
        "attention_weight": p.attention_weight, "layer_wise": layer_wise,
        "device": str(device), "transfer_examples": len(corpus), "steps": len(step_losses),
        "final_loss": float(np.mean(step_losses[-50:])), "duration_s": round(timer.seconds, 2),
    })
    logger.info("student eval %s (teacher %s)", s_scores, t_scores)


if __name__ == "__main__":
    run_main(main)
