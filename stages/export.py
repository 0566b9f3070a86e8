"""Stage ``export``: ONNX export, int8 quantisation and validation against PyTorch.

Exports teacher, student and pruned student (dynamic batch and sequence axes, the model
family's own inputs: ``token_type_ids`` only for sentence pairs in families that have them),
quantises the student to int8 with ONNX Runtime, then checks every ONNX file against its torch
source on the eval set. Label names, inputs and tokenisation settings go into each file's
metadata. Past the tolerances in ``export.*`` the stage fails and writes nothing.

Deps: ``--data``, ``--teacher``, ``--student``, ``--pruned``.
Params: ``teacher.max_length``, ``export.*``.
Outs: ``--out`` folder: ``teacher.onnx``, ``student.onnx``, ``student_pruned.onnx``,
``student_int8.onnx``.
Metrics: ``--metrics``: per file max |Δlogit|, argmax agreement and size; duration.
"""

from __future__ import annotations

import json
import logging

from distillery import bench, evaluate, models, onnx_export, quantize
from distillery.data import load_prepared, model_inputs
from distillery.io import Timer, atomic_path, run_main, stage_args, write_json
from distillery.params import ExportParams, TeacherParams, load_section

logger = logging.getLogger("stages.export")


def metadata(model, inputs: list[str], max_length: int, pair: bool) -> dict[str, str]:
    """What a consumer of the ONNX file needs besides the graph."""
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return {"labels": json.dumps(names), "inputs": json.dumps(inputs),
            "model_type": model.config.model_type, "max_length": str(max_length),
            "sentence_pair": json.dumps(pair), "producer": "distillery"}


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "teacher", "student", "pruned", "out", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "export", ExportParams)
    splits, _ = load_prepared(args.data)
    dev = splits["eval"]
    pair = dev.pairs is not None
    sources = {"teacher": args.teacher, "student": args.student, "student_pruned": args.pruned}
    metrics: dict[str, float] = {}
    problems: list[str] = []
    with Timer() as timer, atomic_path(args.out) as out:
        out.mkdir()
        tok = models.load_tokenizer(args.student)
        inputs = model_inputs(tok, pair)
        reference, meta = {}, {}
        for name, src in sources.items():
            model = models.load_classifier(src)
            meta[name] = metadata(model, inputs, tp.max_length, pair)
            onnx_export.export(model, out / f"{name}.onnx", p.opset, inputs, meta[name])
            reference[name] = evaluate.predict_logits(model, dev, tok, tp.max_length, p.batch_size)
        quantize.dynamic_int8(out / "student.onnx", out / "student_int8.onnx")
        onnx_export.set_metadata(out / "student_int8.onnx", meta["student"])
        checks = [(n, n, p.fp32_max_abs_diff, p.fp32_min_agreement) for n in sources]
        checks.append(("student_int8", "student", p.int8_max_abs_diff, p.int8_min_agreement))
        for name, ref, tol, agree in checks:
            session = bench.ort_session(str(out / f"{name}.onnx"), "cpu")
            logits = evaluate.onnx_logits(session, dev, tok, tp.max_length, p.batch_size)
            v = onnx_export.compare(reference[ref], logits)
            metrics[f"{name}_max_abs_diff"] = v.max_abs_diff
            metrics[f"{name}_agreement"] = v.agreement
            metrics[f"{name}_size_mb"] = round(models.dir_size_mb(out / f"{name}.onnx"), 3)
            problems += v.problems(name, tol, agree)
            logger.info("%s vs torch %s: max|Δ|=%.3g agreement=%.4f", name, ref,
                        v.max_abs_diff, v.agreement)
        if problems:
            raise RuntimeError("ONNX validation failed (export.* tolerances):\n  - "
                               + "\n  - ".join(problems))
    metrics["inputs"] = ",".join(inputs)
    metrics["duration_s"] = round(timer.seconds, 2)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_main(main)
