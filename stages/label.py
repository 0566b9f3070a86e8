"""Stage ``label``: the fine-tuned teacher's logits on every prepared split, computed once.

nas (KD proxy), distill and compress (recovery) read them instead of running the teacher each:
with a causal-LM teacher labelling is the costliest inference of the study, and a change to
their params no longer relabels. See :mod:`distillery.distill.teacher_logits` for the layout.

Deps: ``--data`` (prepared splits), ``--teacher`` (the fine-tuned teacher of stage hpo).
Params: ``teacher.max_length``, ``teacher.device``.
Outs: ``--out`` (``<split>.npy`` float32 ``(N, C)`` for train / transfer / val / eval and
``logits.json``).
Metrics: ``--metrics``: examples labelled per split, the teacher's accuracy / macro-F1 on val
and eval, texts labelled per second, device, duration.
"""

from __future__ import annotations

import logging

from distillery.config.base import load_section
from distillery.config.teacher import TeacherParams
from distillery.core.device import resolve_device
from distillery.core.io import Timer, fingerprint, run_main, stage_args, write_json
from distillery.data.prepared import load_prepared
from distillery.distill import teacher_logits
from distillery.measure import evaluate
from distillery.modeling import loading

logger = logging.getLogger("stages.label")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "teacher", "out", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    splits, names = load_prepared(args.data)
    splits = {name: splits[name] for name in teacher_logits.SPLITS}
    device = resolve_device(tp.device)
    teacher = loading.load_classifier(args.teacher).to(device)
    tok = loading.load_tokenizer(args.teacher)
    with Timer() as timer:
        logits = teacher_logits.compute(teacher, tok, splits, tp.max_length)
    teacher_logits.save(args.out, logits, splits, names, tp.max_length,
                        fingerprint(args.teacher))
    n = sum(len(s) for s in splits.values())
    write_json(args.metrics, {
        **{f"n_{name}": len(split) for name, split in splits.items()},
        **{f"teacher_{s}_{k}": v for s in ("val", "eval") if len(splits[s])
           for k, v in evaluate.scores(logits[s], splits[s].labels).items()},
        "texts_per_s": round(n / max(timer.seconds, 1e-9), 1),
        "device": str(device), "duration_s": round(timer.seconds, 2),
    })
    logger.info("teacher labelled %d texts in %.1f s", n, timer.seconds)


if __name__ == "__main__":
    run_main(main)
