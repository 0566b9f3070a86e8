"""Stage ``compress``: prune the student (``compress.method``), then recover by distillation.

``structured`` (default) scores every attention head and FFN neuron by Taylor importance on
the labelled train split and physically removes the weakest (``keep_heads``,
``keep_neurons`` per layer): a smaller, faster dense model whose per-layer shapes go to
``config.distillery_pruned``. ``unstructured`` zeroes the globally smallest encoder weights
(``sparsity``) under a mask, made permanent after recovery. The optional recovery fine-tune
distils from the teacher (its logits from stage ``label``) on distill's corpus, the labelled
train split plus the transfer texts: ``kd_alpha * CE(labelled rows) + (1 - kd_alpha) * T^2 *
KL``, plus ``hidden_weight`` times the hidden-state MSE to the unpruned student (the pruned
model keeps its widths, so layer ``i`` matches layer ``i`` with no projection).

Deps: ``--data``, ``--student``, ``--logits`` (the teacher's, stage ``label``).
Params: ``teacher.max_length``, ``task.metric``, ``compress.*``.
Outs: ``--out`` (pruned student, ``save_pretrained`` folder with tokenizer); ``--curves``
(DVCLive folder: loss and validation score during recovery).
Metrics: ``--metrics``: method; structured: ``keep_heads`` / ``keep_neurons`` and heads and
neurons kept per layer; unstructured: target and achieved sparsity; parameters before and
after and their reduction; eval score (``task.metric``) before, right after pruning and after
recovery, eval accuracy / macro-F1 at the end, duration.
"""

from __future__ import annotations

import logging

from distillery.compress import pruning
from distillery.config.base import load_section
from distillery.config.compress import CompressParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.device import resolve_device
from distillery.core.io import Timer, atomic_path, run_main, seed_everything, stage_args, write_json
from distillery.data.prepared import concat, load_prepared
from distillery.distill import losses, teacher_logits
from distillery.measure import curves, evaluate
from distillery.modeling import loading, training

logger = logging.getLogger("stages.compress")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "student", "logits", "out", "metrics", "curves"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "compress", CompressParams)
    metric = load_section(args.params, "task", TaskParams).metric
    method = pruning.METHODS.lookup(p.method)
    seed_everything(p.seed)
    splits, _ = load_prepared(args.data)
    train, transfer, val, dev = (splits[s] for s in ("train", "transfer", "val", "eval"))
    model = loading.load_classifier(args.student)
    method.check(model)
    tok = loading.load_tokenizer(args.student)
    n_before = loading.count_params(model)
    before = evaluate.evaluate(model, dev, tok, tp.max_length, metric)
    with Timer() as timer:
        pruned = method.apply(model, p, train, tok, tp.max_length)
        pruned_score = evaluate.evaluate(model, dev, tok, tp.max_length, metric)
        if p.recovery_steps:
            device = resolve_device(tp.device)
            # the distillation corpus (labelled train + the teacher-labelled transfer texts):
            # 4,000 labelled rows alone are 5 epochs in 600 steps and overfit a pruned student
            corpus = concat(train, transfer)
            t_logits = teacher_logits.load_many(args.logits, splits, "train", "transfer")
            model.to(device)
            loading.freeze_word_embeddings(model)
            cfg = training.TrainConfig(lr=p.lr, batch_size=p.batch_size,
                                       max_length=tp.max_length, steps=p.recovery_steps,
                                       seed=p.seed)
            # hidden states of the unpruned student (same widths and layers) guide its pruned
            # copy layer by layer; the logits still come from the teacher
            reference = loading.load_classifier(args.student).to(device) \
                if p.hidden_weight > 0 else None
            loss = losses.DistillLoss(t_logits, p.kd_alpha, p.kd_temperature,
                                       teacher=reference, student=model,
                                       hidden_weight=p.hidden_weight)
            with curves.Curve(args.curves, val, tok, tp.max_length, metric,
                              p.recovery_steps) as curve:
                training.train(model, corpus, tok, cfg, loss, desc="recovery", on_step=curve)
        else:  # no recovery: an empty curve, so the stage's output exists
            curves.Curve(args.curves, None, tok, tp.max_length, metric, 1).close()
        pruned |= method.finish(model.cpu())
    final = evaluate.scores(evaluate.predict_logits(model, dev, tok, tp.max_length), dev.labels)
    after = final[metric]
    with atomic_path(args.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    n_after = loading.count_params(model)
    write_json(args.metrics, {
        "method": p.method, **pruned,
        "n_params_before": n_before, "n_params_after": n_after,
        "param_reduction": round(1 - n_after / n_before, 4),
        "metric": metric, "eval_score_before": before, "eval_score_pruned": pruned_score,
        "eval_score_after": after, **{f"eval_{k}": v for k, v in final.items()},
        "recovery_steps": p.recovery_steps,
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("%s pruning: %d -> %d params, eval %s %.4f -> %.4f (after recovery %.4f)",
                p.method, n_before, n_after, metric, before, pruned_score, after)


if __name__ == "__main__":
    run_main(main)
