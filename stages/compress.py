"""Stage ``compress``: global magnitude pruning of the student, made permanent.

Deps: ``--data``, ``--student``.
Params: ``teacher.max_length``, ``compress.*``.
Outs: ``--out`` (pruned student, ``save_pretrained`` folder with tokenizer).
Metrics: ``--metrics``: target and achieved sparsity, dev accuracy before/after, duration.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from distillery import evaluate, models, prune, training
from distillery.data import read_tsv
from distillery.io import Timer, atomic_path, seed_everything, setup_logging, write_json
from distillery.params import CompressParams, TeacherParams, load_section

logger = logging.getLogger("stages.compress")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    for name in ("data", "student", "out", "metrics"):
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args(argv)
    setup_logging()
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "compress", CompressParams)
    seed_everything(p.seed)
    data = Path(args.data)
    train, dev = read_tsv(data / "train.tsv"), read_tsv(data / "eval.tsv")
    model = models.load_classifier(args.student)
    tok = models.load_tokenizer(args.student)
    before = evaluate.evaluate(model, dev, tok, tp.max_length)
    with Timer() as timer:
        prune.apply_global_magnitude(model, p.sparsity)
        pruned_acc = evaluate.evaluate(model, dev, tok, tp.max_length)
        if p.recovery_steps:
            models.freeze_word_embeddings(model)
            cfg = training.TrainConfig(lr=p.lr, batch_size=p.batch_size,
                                       max_length=tp.max_length, steps=p.recovery_steps,
                                       seed=p.seed)
            training.train(model, train, tok, cfg, desc="recovery")
        prune.make_permanent(model)
    after = evaluate.evaluate(model, dev, tok, tp.max_length)
    with atomic_path(args.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    write_json(args.metrics, {
        "target_sparsity": p.sparsity, "achieved_sparsity": prune.sparsity(model),
        "dev_accuracy_before": before, "dev_accuracy_pruned": pruned_acc,
        "dev_accuracy": after, "recovery_steps": p.recovery_steps,
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("sparsity %.3f: dev %.4f -> %.4f (after recovery %.4f)",
                prune.sparsity(model), before, pruned_acc, after)


if __name__ == "__main__":
    main()
