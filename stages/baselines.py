"""Stage ``baselines``: the cheap models a practitioner tries first, trained on the labelled
train split (gold labels, no teacher), their settings chosen on val; benchmarked beside the
students by stage ``benchmark``.

Kinds (``baselines.kinds``, one module each in :mod:`distillery.baselines`): ``tfidf`` (word
and character n-gram TF-IDF + logistic regression, scikit-learn, gold labels) and ``static``
(model2vec static embeddings of the teacher + a linear head trained on the teacher's logits
over train + transfer, int8 ONNX).

Deps: ``--data``, ``--teacher``, ``--logits``.
Params: ``task.metric``, ``teacher.max_length``, ``baselines.*``.
Outs: ``--out`` (one folder per kind: JSON + safetensors, no pickle).
Metrics: ``--metrics``: per kind its val and eval scores, chosen settings, features, fit time.
"""

from __future__ import annotations

import logging

from distillery.baselines import KINDS, Context
from distillery.config.base import load_section
from distillery.config.baselines import BaselinesParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import Timer, atomic_path, run_main, stage_args, write_json
from distillery.data.prepared import load_prepared
from distillery.measure import evaluate

logger = logging.getLogger("stages.baselines")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "teacher", "logits", "out", "metrics"], argv)
    p = load_section(args.params, "baselines", BaselinesParams)
    metric = load_section(args.params, "task", TaskParams).metric
    tp = load_section(args.params, "teacher", TeacherParams)
    splits, names = load_prepared(args.data)
    metrics: dict = {"metric": metric}
    with atomic_path(args.out) as out:
        out.mkdir()
        ctx = Context(splits, names, metric, out, args.teacher, args.logits, tp.max_length)
        for kind in p.kinds:
            with Timer() as timer:
                model, facts = KINDS.lookup(kind).train(ctx, p)
            dev = splits["eval"]
            scores = evaluate.scores(model.logits(dev.texts, dev.pairs), dev.labels)
            metrics[kind] = {**facts, **{f"eval_{k}": round(v, 6) for k, v in scores.items()},
                             "fit_s": round(timer.seconds, 2)}
            logger.info("%s: %s", kind, metrics[kind])
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_main(main)
