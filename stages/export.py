"""Stage ``export``: ONNX export, quantisation recipes, vocabulary pruning and validation.

Exports the teacher, the student and the structured-pruned student (dynamic batch and sequence
axes, eager attention so ONNX Runtime's transformer optimizer can fuse it; the model family's
own inputs: ``token_type_ids`` only for sentence pairs in families that have them), then
writes one file per benchmark variant:

==================================  ======================================================
file                                variant
==================================  ======================================================
``teacher.onnx``                    ``teacher-onnx-fp32``
``teacher_int8.onnx``               ``teacher-onnx-int8`` (``export.int8_recipe``)
``student.onnx``                    ``student-onnx-fp32``
``student_int8.onnx``               ``student-onnx-int8`` (``export.int8_recipe``)
``student_int8_dynamic.onnx``       ``student-onnx-int8-dynamic`` (plain quantize_dynamic)
``student_int8_per_channel.onnx``   ``student-onnx-int8-per-channel``
``student_int8_static.onnx``        ``student-onnx-int8-static`` (QDQ, calibrated on train)
``student_fp16.onnx``               ``student-onnx-fp16`` (for GPU providers)
``student_pruned.onnx``             ``student-pruned-onnx-fp32``
``student_pruned_int8.onnx``        ``student-pruned-onnx-int8``
``student_pruned_vocab_int8.onnx``  ``student-pruned-vocab-onnx-int8``: only the embedding
                                    rows of tokens seen in train + transfer text and the
                                    ``export.vocab_extra`` commonest others (the rest read
                                    ``export.vocab_unseen``: nearest kept token or unk)
==================================  ======================================================

A causal-LM teacher (classifier form) is exported in fp32 only (:data:`DECODER_INT8`; the
metrics list what was skipped and why). Every file is checked against its PyTorch source on
the eval set (fp32: absolute |Δlogit| tolerance; int8 and fp16: ``int8_max_rel_diff``, the
|Δlogit| relative to the logits' range, and ``int8_min_agreement``); past them the stage fails
and writes nothing. Label
names, inputs, tokenisation settings, the variant name, precision, recipe and parameter count go
into each file's metadata.

Deps: ``--data``, ``--teacher``, ``--student``, ``--pruned``.
Params: ``teacher.max_length``, ``export.*``.
Outs: ``--out`` folder with the files above.
Metrics: ``--metrics``: per file max |Δlogit| (absolute and relative), argmax agreement,
size and the recipe's facts (fused operator counts, quantised nodes); vocabulary kept;
duration.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass

import numpy as np

from distillery.compress import vocab
from distillery.config.base import load_section
from distillery.config.export import ExportParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import Timer, atomic_path, run_main, stage_args, write_json
from distillery.data.prepared import Split, concat, encode, load_prepared, model_inputs
from distillery.export import onnx_export, quantize
from distillery.measure import bench, evaluate
from distillery.modeling import families, loading

logger = logging.getLogger("stages.export")


DECODER_INT8 = ("a causal-LM teacher is exported in fp32 only: ONNX Runtime's int8 recipes "
                "quantise its activations per tensor, and decoder activations have outliers "
                "(SmolLM2-135M: 69-75% agreement with fp32 on 64 SST-2 dev sentences)")
"""Why a causal-LM teacher gets no int8 file."""


@dataclass
class Variant:
    """One ONNX file: which torch model it comes from and how."""

    file: str
    variant: str
    source: str
    """Key of the torch model it reproduces (validation reference)."""
    recipe: str | None = None
    """Quantisation recipe applied to ``<source>.onnx``; None = the plain fp32 export."""
    precision: str = "fp32"


def variants(int8_recipe: str) -> list[Variant]:
    """Every file the stage writes, in order."""
    out = [
        Variant("teacher.onnx", "teacher-onnx-fp32", "teacher"),
        Variant("teacher_int8.onnx", "teacher-onnx-int8", "teacher", int8_recipe, "int8"),
        Variant("student.onnx", "student-onnx-fp32", "student"),
        Variant("student_int8.onnx", "student-onnx-int8", "student", int8_recipe, "int8"),
    ]
    for recipe, suffix in (("dynamic", "dynamic"), ("dynamic_per_channel", "per_channel"),
                           ("static", "static")):
        if recipe != int8_recipe:
            out.append(Variant(f"student_int8_{suffix}.onnx",
                               f"student-onnx-int8-{suffix.replace('_', '-')}", "student",
                               recipe, "int8"))
    out += [
        Variant("student_fp16.onnx", "student-onnx-fp16", "student", "fp16", "fp16"),
        Variant("student_pruned.onnx", "student-pruned-onnx-fp32", "student_pruned"),
        Variant("student_pruned_int8.onnx", "student-pruned-onnx-int8", "student_pruned",
                int8_recipe, "int8"),
        Variant("student_pruned_vocab_int8.onnx", "student-pruned-vocab-onnx-int8",
                "student_pruned_vocab", int8_recipe, "int8"),
    ]
    return out


def metadata(model, inputs: list[str], max_length: int, pair: bool) -> dict[str, str]:
    """What a consumer of the ONNX file needs besides the graph."""
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return {"labels": json.dumps(names), "inputs": json.dumps(inputs),
            "model_type": model.config.model_type, "max_length": str(max_length),
            "sentence_pair": json.dumps(pair), "producer": "distillery",
            "n_params": str(loading.count_params(model))}


def attention_shape(model) -> tuple[int, int]:
    """``(heads, attention width)`` of the first layer, for the transformer optimizer (a
    structured-pruned model has fewer heads than its config says)."""
    pruned = getattr(model.config, "distillery_pruned", None)
    genome = families.genome_of(model.config)
    head_dim = genome["hidden_size"] // genome["num_attention_heads"]
    heads = pruned["heads"][0] if pruned else genome["num_attention_heads"]
    return heads, heads * head_dim


def calibration_feeds(split: Split, tok, inputs: list[str], max_length: int, n: int,
                      pad: bool = False):
    """Batch-1 feeds of the first ``n`` texts of ``split`` (static int8 calibration).

    ``pad``: every feed padded to ``max_length`` (masked): ONNX Runtime's histogram
    calibrators (entropy, percentile) stack each tensor over all feeds, so they need one
    shape; min/max takes each text at its own length.
    """
    feeds = []
    for i in range(min(n, len(split))):
        pair = None if split.pairs is None else [split.pairs[i]]
        enc = encode(tok, [split.texts[i]], pair, max_length,
                     padding="max_length" if pad else False, return_tensors="np")
        feeds.append({k: enc[k] for k in inputs})
    return feeds


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "teacher", "student", "pruned", "out", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "export", ExportParams)
    splits, _ = load_prepared(args.data)
    train, transfer, dev = splits["train"], splits["transfer"], splits["eval"]
    pair = dev.pairs is not None
    metrics: dict[str, float | int | str] = {}
    problems: list[str] = []
    skipped: dict[str, str] = {}
    with Timer() as timer, atomic_path(args.out) as out:
        out.mkdir()
        tok = loading.load_tokenizer(args.student)
        inputs = model_inputs(tok, pair)
        t_tok = loading.load_tokenizer(args.teacher)  # a causal-LM teacher's carries its prompt
        tok_of = {"teacher": t_tok}
        inputs_of = {"teacher": model_inputs(t_tok, pair)}
        torch_models = {"teacher": loading.load_classifier(args.teacher),
                        "student": loading.load_classifier(args.student),
                        "student_pruned": loading.load_classifier(args.pruned)}
        # Vocabulary pruning: the rows of tokens the student saw in training, ids remapped
        # inside the model (an unseen token is read as the unknown token).
        corpus = concat(train, transfer)
        used = vocab.used_token_ids(tok, corpus, tp.max_length)
        keep = np.union1d(used, vocab.frequent_ids(tok, p.vocab_extra, exclude=used))
        small = copy.deepcopy(torch_models["student_pruned"])
        facts = vocab.prune_vocab(small, keep, tok.unk_token_id, p.vocab_unseen,
                                  tok.all_special_ids)
        torch_models["student_pruned_vocab"] = small
        metrics |= {f"vocab_{k}": v for k, v in facts.items()} | {
            "vocab_unseen": p.vocab_unseen, "vocab_used": len(used),
            "vocab_extra": len(keep) - len(used)}
        reference = {name: evaluate.predict_logits(m, dev, tok_of.get(name, tok), tp.max_length,
                                                   p.batch_size)
                     for name, m in torch_models.items()}
        calib = calibration_feeds(train, tok, inputs, tp.max_length, p.calibration_examples,
                                  pad=p.static_calibration != "minmax")
        for v in variants(p.int8_recipe):
            model = torch_models[v.source]
            recipe = v.recipe
            if loading.is_prompted(model.config) and recipe is not None:
                skipped[v.file] = DECODER_INT8
                continue
            src_inputs = inputs_of.get(v.source, inputs)
            meta = {**metadata(model, src_inputs, tp.max_length, pair), "variant": v.variant,
                    "precision": v.precision, "recipe": recipe or "none"}
            fp32 = out / f"{v.source}.onnx"
            if not fp32.is_file():  # every recipe starts from the plain fp32 export
                onnx_export.export(model, fp32, p.opset, src_inputs, meta,
                                   exporter=p.exporter)
            if recipe is None:  # the fp32 export itself (the first variant of its source)
                continue
            heads, width = (0, 0) if recipe == "dynamic" else attention_shape(model)
            options = {"calibrate_method": p.static_calibration} if recipe == "static" else {}
            done = quantize.apply(recipe, fp32, out / v.file, model_type=model.config.model_type,
                                  num_heads=heads, hidden_size=width, calibration=calib,
                                  **options)
            onnx_export.set_metadata(out / v.file, meta)
            metrics |= {f"{v.file[:-5]}_{k}": val for k, val in done.items()
                        if isinstance(val, int | float)}
        (out / "student_pruned_vocab.onnx").unlink()  # only its int8 form is a variant
        for v in variants(p.int8_recipe):
            if v.file in skipped:
                continue
            fp32_like = v.precision == "fp32"
            tol = ({"max_abs_diff": p.fp32_max_abs_diff} if fp32_like
                   else {"max_rel_diff": p.int8_max_rel_diff})
            agree = p.fp32_min_agreement if fp32_like else p.int8_min_agreement
            name = v.file[:-5]
            session = bench.ort_session(str(out / v.file), "cpu")
            logits = evaluate.onnx_logits(session, dev, tok_of.get(v.source, tok), tp.max_length,
                                          p.batch_size)
            check = onnx_export.compare(reference[v.source], logits)
            metrics[f"{name}_max_abs_diff"] = check.max_abs_diff
            metrics[f"{name}_rel_diff"] = round(check.rel_diff, 4)
            metrics[f"{name}_agreement"] = check.agreement
            metrics[f"{name}_size_mb"] = round(loading.dir_size_mb(out / v.file), 3)
            problems += check.problems(name, agree, **tol)
            logger.info("%s vs torch %s: max|Δ|=%.3g agreement=%.4f", name, v.source,
                        check.max_abs_diff, check.agreement)
        if problems:
            raise RuntimeError("ONNX validation failed (export.* tolerances):\n  - "
                               + "\n  - ".join(problems))
    metrics["inputs"] = ",".join(inputs)
    metrics["skipped"] = skipped
    metrics["duration_s"] = round(timer.seconds, 2)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_main(main)
