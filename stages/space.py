"""Stage ``space``: a self-contained, deployable Hugging Face Space for the shipped model.

Writes ``--out`` (see :mod:`distillery.serve.space`): ``app.py``, ``requirements.txt`` (no torch),
``model.onnx``, ``tokenizer.json``, ``examples.jsonl``, ``space.json`` and a ``README.md`` with
the Space's YAML header and the model's measured accuracy, latency and size. The examples are
eval sentences the model gets wrong (about half) and right, scored through the pipeline's own
path, and the stage checks that the app's tokenizers-only path gives the same predictions.

Deps: ``--onnx`` (the variant's file), ``--tokenizer`` (the student folder), ``--data``,
``--report`` and ``--bench`` (metrics), ``src/distillery/serve/space_app.py``.
Params: ``space.*``.
Outs: ``--out``. Metrics: ``--metrics``: the variant, its eval score at batch 1 (as the app
runs it) and how many eval examples the app predicts as the pipeline does (all, or it fails).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from distillery.config.base import load_section
from distillery.config.space import SpaceParams
from distillery.config.task import TaskParams
from distillery.core.io import UserError, run_main, stage_args, write_json
from distillery.data.prepared import load_prepared
from distillery.measure import evaluate
from distillery.modeling.loading import load_tokenizer
from distillery.serve import demo, space, space_app

logger = logging.getLogger("stages.space")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["onnx", "tokenizer", "data", "report", "bench", "out",
                                "metrics"], argv)
    p = load_section(args.params, "space", SpaceParams)
    metric = load_section(args.params, "task", TaskParams).metric
    for path in (args.report, args.bench):
        if not Path(path).is_file():
            raise UserError(f"{path} not found: run `dvc repro report`")
    report = json.loads(Path(args.report).read_text())
    bench = json.loads(Path(args.bench).read_text())
    variant = space.resolve_variant(p.variant, report)
    files = demo.onnx_variants(Path(args.onnx))
    if variant not in files:
        raise UserError(f"space.variant: {variant!r} is not among the exported ONNX variants "
                         f"({', '.join(files)})")
    tokenizer_json = Path(args.tokenizer) / "tokenizer.json"
    app_model = space_app.OnnxClassifier(files[variant], tokenizer_json, name=variant)
    splits, labels = load_prepared(args.data)
    split = splits["eval"]
    # Batch 1, as the app runs: dynamic int8 quantises activations per batch, so a padded
    # batch can flip a borderline prediction (measured: 6 and 8 of 872 SST-2 sentences).
    logits = evaluate.onnx_logits(app_model.session, split, load_tokenizer(args.tokenizer),
                                  app_model.max_length, batch_size=1)
    preds = logits.argmax(axis=-1)
    app_probs = np.array([
        [app_model.predict(t, None if split.pairs is None else split.pairs[i]).probs[n]
         for n in labels]
        for i, t in enumerate(tqdm(split.texts, desc="app vs pipeline", leave=False))])
    gap = float(np.abs(app_probs - space_app.softmax(logits.astype(np.float64))).max())
    same = int((app_probs.argmax(axis=-1) == preds).sum())
    if same != len(split) or gap > 1e-5:
        raise RuntimeError(f"the app disagrees with the pipeline on {len(split) - same} of "
                           f"{len(split)} eval examples (max |dprob| {gap:.2g}): its "
                           "tokenisation or model input has drifted")
    examples = demo.pick_examples(split, {variant: preds}, labels, p.examples)
    score = evaluate.score(logits, split.labels, metric)
    space.write(args.out, files[variant], tokenizer_json, variant, p.title, bench, examples,
                metric, score, p.max_input_chars)
    write_json(args.metrics, {"variant": variant, metric: round(score, 6),
                              "app_matches_pipeline": same, "eval_examples": len(split),
                              "app_max_prob_diff": gap,
                              "examples": len(examples)})
    logger.info("space for %s in %s (%s %.4f; app == pipeline on %d/%d)", variant, args.out,
                metric, score, same, len(split))


if __name__ == "__main__":
    run_main(main)
