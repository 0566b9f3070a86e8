"""The files of stage ``export``: which ONNX variants exist, how each is made from its torch
source (plain export, a quantisation recipe of :mod:`distillery.export.quantize`, vocabulary
pruning) and how each is validated against that source on the eval set."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillery.compress import vocab
from distillery.config.export import ExportParams
from distillery.data.prepared import Split, concat, encode, model_inputs
from distillery.export import onnx_export, quantize
from distillery.measure import bench, evaluate
from distillery.modeling import families, loading

logger = logging.getLogger(__name__)


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


def prune_vocab(model, tok, corpus: Split, max_length: int, p: ExportParams):
    """A copy of ``model`` keeping the word-embedding rows of the tokens ``corpus`` uses and the
    ``p.vocab_extra`` commonest others (ids remapped inside the model; an unseen token is read
    per ``p.vocab_unseen``), and its ``vocab_*`` metrics."""
    used = vocab.used_token_ids(tok, corpus, max_length)
    keep = np.union1d(used, vocab.frequent_ids(tok, p.vocab_extra, exclude=used))
    small = copy.deepcopy(model)
    facts = vocab.prune_vocab(small, keep, tok.unk_token_id, p.vocab_unseen, tok.all_special_ids)
    metrics = {f"vocab_{k}": v for k, v in facts.items()} | {
        "vocab_unseen": p.vocab_unseen, "vocab_used": len(used),
        "vocab_extra": len(keep) - len(used)}
    return small, metrics


def write_variants(out: Path, torch_models: dict, inputs_of: dict[str, list[str]],
                   max_length: int, pair: bool, calib: list, p: ExportParams
                   ) -> tuple[dict, dict[str, str]]:
    """Write every file of :func:`variants` into ``out``: the fp32 export of each source, then
    each recipe applied to it. Returns the recipes' numeric facts (``<file>_<fact>``) and the
    files skipped with their reason."""
    metrics: dict = {}
    skipped: dict[str, str] = {}
    for v in variants(p.int8_recipe):
        model = torch_models[v.source]
        recipe = v.recipe
        if loading.is_prompted(model.config) and recipe is not None:
            skipped[v.file] = DECODER_INT8
            continue
        src_inputs = inputs_of[v.source]
        meta = {**metadata(model, src_inputs, max_length, pair), "variant": v.variant,
                "precision": v.precision, "recipe": recipe or "none"}
        fp32 = out / f"{v.source}.onnx"
        if not fp32.is_file():  # every recipe starts from the plain fp32 export
            onnx_export.export(model, fp32, p.opset, src_inputs, meta, exporter=p.exporter)
        if recipe is None:  # the fp32 export itself (the first variant of its source)
            continue
        heads, width = (0, 0) if recipe == "dynamic" else attention_shape(model)
        options = {"calibrate_method": p.static_calibration} if recipe == "static" else {}
        done = quantize.apply(recipe, fp32, out / v.file, model_type=model.config.model_type,
                              num_heads=heads, hidden_size=width, calibration=calib, **options)
        onnx_export.set_metadata(out / v.file, meta)
        metrics |= {f"{v.file[:-5]}_{k}": val for k, val in done.items()
                    if isinstance(val, int | float)}
    return metrics, skipped


def validate(out: Path, reference: dict, dev: Split, tok_of: dict, max_length: int,
             p: ExportParams, skipped: dict[str, str]) -> tuple[dict, list[str]]:
    """Each written file's logits on ``dev`` (ONNX Runtime, CPU) against its torch source's
    (``reference``): ``<file>_{max_abs_diff,rel_diff,agreement,size_mb}`` and the problems
    past the ``export.*`` tolerances (fp32: absolute |Δlogit|; int8 and fp16: relative)."""
    metrics: dict = {}
    problems: list[str] = []
    for v in variants(p.int8_recipe):
        if v.file in skipped:
            continue
        fp32_like = v.precision == "fp32"
        tol = ({"max_abs_diff": p.fp32_max_abs_diff} if fp32_like
               else {"max_rel_diff": p.int8_max_rel_diff})
        agree = p.fp32_min_agreement if fp32_like else p.int8_min_agreement
        name = v.file[:-5]
        session = bench.ort_session(str(out / v.file), "cpu")
        logits = evaluate.onnx_logits(session, dev, tok_of[v.source], max_length, p.batch_size)
        check = onnx_export.compare(reference[v.source], logits)
        metrics[f"{name}_max_abs_diff"] = check.max_abs_diff
        metrics[f"{name}_rel_diff"] = round(check.rel_diff, 4)
        metrics[f"{name}_agreement"] = check.agreement
        metrics[f"{name}_size_mb"] = round(loading.dir_size_mb(out / v.file), 3)
        problems += check.problems(name, agree, **tol)
        logger.info("%s vs torch %s: max|Δ|=%.3g agreement=%.4f", name, v.source,
                    check.max_abs_diff, check.agreement)
    return metrics, problems


def export_all(out: Path, splits: dict[str, Split], teacher: str, student: str, pruned: str,
               max_length: int, p: ExportParams) -> dict:
    """Stage ``export``'s work: every variant of :func:`variants` written into ``out`` and
    validated; returns the metrics (``skipped`` files with their reason included).

    Raises:
        RuntimeError: a file is past the ``export.*`` tolerances (nothing is kept).
    """
    train, transfer, dev = splits["train"], splits["transfer"], splits["eval"]
    pair = dev.pairs is not None
    tok = loading.load_tokenizer(student)
    t_tok = loading.load_tokenizer(teacher)  # a causal-LM teacher's carries its prompt
    inputs = model_inputs(tok, pair)
    torch_models = {"teacher": loading.load_classifier(teacher),
                    "student": loading.load_classifier(student),
                    "student_pruned": loading.load_classifier(pruned)}
    small, metrics = prune_vocab(torch_models["student_pruned"], tok,
                                 concat(train, transfer), max_length, p)
    torch_models["student_pruned_vocab"] = small
    tok_of = {name: t_tok if name == "teacher" else tok for name in torch_models}
    inputs_of = {name: model_inputs(t_tok, pair) if name == "teacher" else inputs
                 for name in torch_models}
    reference = {name: evaluate.predict_logits(m, dev, tok_of[name], max_length, p.batch_size)
                 for name, m in torch_models.items()}
    calib = calibration_feeds(train, tok, inputs, max_length, p.calibration_examples,
                              pad=p.static_calibration != "minmax")
    facts, skipped = write_variants(out, torch_models, inputs_of, max_length, pair, calib, p)
    (out / "student_pruned_vocab.onnx").unlink()  # only its int8 form is a variant
    checks, problems = validate(out, reference, dev, tok_of, max_length, p, skipped)
    if problems:
        raise RuntimeError("ONNX validation failed (export.* tolerances):\n  - "
                           + "\n  - ".join(problems))
    return {**metrics, **facts, **checks, "inputs": ",".join(inputs), "skipped": skipped}
