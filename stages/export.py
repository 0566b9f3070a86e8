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

A causal-LM teacher (classifier form) is exported in fp32 only
(:data:`distillery.export.variants.DECODER_INT8`; the
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

from pathlib import Path

from distillery.config.base import load_section
from distillery.config.export import ExportParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import Timer, atomic_path, run_main, stage_args, write_json
from distillery.data.prepared import load_prepared
from distillery.export.variants import export_all


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "teacher", "student", "pruned", "out", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "export", ExportParams)
    splits, _ = load_prepared(args.data)
    with Timer() as timer, atomic_path(args.out) as out:
        out.mkdir()
        metrics = export_all(Path(out), splits, args.teacher, args.student, args.pruned,
                             tp.max_length, p)
    write_json(args.metrics, {**metrics, "duration_s": round(timer.seconds, 2)})


if __name__ == "__main__":
    run_main(main)
