"""Stage ``export``: ONNX export, int8 quantisation and validation against PyTorch.

Exports teacher, student and pruned student (dynamic batch and sequence axes), quantises the
student to int8 with ONNX Runtime, then checks every ONNX file against its torch source on the
eval set. Past the tolerances in ``export.*`` the stage fails and writes nothing.

Deps: ``--data``, ``--teacher``, ``--student``, ``--pruned``.
Params: ``teacher.max_length``, ``export.*``.
Outs: ``--out`` folder: ``teacher.onnx``, ``student.onnx``, ``student_pruned.onnx``,
``student_int8.onnx``.
Metrics: ``--metrics``: per file max |Δlogit|, argmax agreement and size; duration.
"""

from __future__ import annotations

import logging
from pathlib import Path

from distillery import bench, evaluate, models, onnx_export, quantize
from distillery.data import read_tsv
from distillery.io import Timer, atomic_path, stage_args, write_json
from distillery.params import ExportParams, TeacherParams, load_section

logger = logging.getLogger("stages.export")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "teacher", "student", "pruned", "out", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "export", ExportParams)
    dev = read_tsv(Path(args.data) / "eval.tsv")
    sources = {"teacher": args.teacher, "student": args.student, "student_pruned": args.pruned}
    metrics: dict[str, float] = {}
    problems: list[str] = []
    with Timer() as timer, atomic_path(args.out) as out:
        out.mkdir()
        tok = models.load_tokenizer(args.student)
        reference = {}
        for name, src in sources.items():
            model = models.load_classifier(src)
            onnx_export.export(model, out / f"{name}.onnx", p.opset)
            reference[name] = evaluate.predict_logits(model, dev, tok, tp.max_length, p.batch_size)
        quantize.dynamic_int8(out / "student.onnx", out / "student_int8.onnx")
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
    metrics["duration_s"] = round(timer.seconds, 2)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
