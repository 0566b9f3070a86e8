"""Stage ``distill``: train the NAS-chosen student from the fine-tuned teacher.

The teacher labels the labelled train split and the unlabelled transfer split once (its
logits are cached in memory); the student, initialised from the teacher where shapes allow,
then minimises ``alpha * CE + (1 - alpha) * T^2 * KL`` (KL only on transfer sentences).

Deps: ``--data``, ``--arch`` (NAS result), ``--teacher`` (merged LoRA teacher).
Params: ``teacher.max_length``, ``distill.*``.
Outs: ``--out`` (student, ``save_pretrained`` folder with tokenizer).
Metrics: ``--metrics``: student val/dev accuracy, agreement with the teacher on dev,
parameter counts, duration.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from distillery import distill, evaluate, models, training
from distillery.data import Split, read_tsv
from distillery.io import Timer, atomic_path, read_json, seed_everything, stage_args, write_json
from distillery.params import DistillParams, TeacherParams, load_section

logger = logging.getLogger("stages.distill")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "arch", "teacher", "out", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "distill", DistillParams)
    genome = read_json(args.arch)["genome"]
    seed_everything(p.seed)
    data = Path(args.data)
    train, transfer = read_tsv(data / "train.tsv"), read_tsv(data / "transfer.tsv")
    val, dev = read_tsv(data / "val.tsv"), read_tsv(data / "eval.tsv")
    teacher = models.load_classifier(args.teacher)
    tok = models.load_tokenizer(args.teacher)
    corpus = Split(train.sentences + transfer.sentences, train.labels + transfer.labels)
    with Timer() as timer:
        t_logits = evaluate.predict_logits(teacher, corpus, tok, tp.max_length, 128,
                                           desc="teacher logits")
        student = models.build_student(genome, teacher, init=p.init_from_teacher)
        if p.init_from_teacher and genome["hidden_size"] == teacher.config.hidden_size:
            models.freeze_word_embeddings(student)
        cfg = training.TrainConfig(lr=p.lr, batch_size=p.batch_size, max_length=tp.max_length,
                                   epochs=p.epochs, seed=p.seed)
        losses = training.train(student, corpus, tok, cfg,
                                distill.kd_loss_fn(t_logits, p.alpha, p.temperature),
                                desc="distill")
    s_dev = evaluate.predict_logits(student, dev, tok, tp.max_length)
    t_dev = evaluate.predict_logits(teacher, dev, tok, tp.max_length)
    with atomic_path(args.out) as tmp:
        student.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    write_json(args.metrics, {
        "student_val_accuracy": evaluate.evaluate(student, val, tok, tp.max_length),
        "student_dev_accuracy": evaluate.accuracy(s_dev, dev.labels),
        "teacher_dev_accuracy": evaluate.accuracy(t_dev, dev.labels),
        "dev_agreement_with_teacher": float((s_dev.argmax(-1) == t_dev.argmax(-1)).mean()),
        "student_n_params": models.count_params(student),
        "teacher_n_params": models.count_params(teacher),
        "transfer_examples": len(corpus), "steps": len(losses),
        "final_loss": float(np.mean(losses[-50:])), "duration_s": round(timer.seconds, 2),
    })
    logger.info("student dev accuracy %.4f (teacher %.4f)",
                evaluate.accuracy(s_dev, dev.labels), evaluate.accuracy(t_dev, dev.labels))


if __name__ == "__main__":
    main()
