"""Command line: score one classifier variant with lm-eval on a prepared split.

    python -m distillery.lmeval --model models/onnx/student_int8.onnx \\
        --tokenizer models/student --data data/prepared [--limit 100]

Writes the task (:func:`distillery.lmeval.task.write_task`; prompt and verbalizers default to
:func:`~distillery.lmeval.task.default_prompt` and the label names) into ``--task-dir`` (kept)
or a temporary folder (removed afterwards), runs ``lm_eval.simple_evaluate`` with the
``distillery`` model on it and prints lm-eval's ``acc``; ``--metrics`` also writes it as JSON.
Few-shot examples (``--num-fewshot``) come from ``train.jsonl`` of ``--data``.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from pathlib import Path

from distillery.config.base import load_section
from distillery.config.teacher import TeacherParams
from distillery.core.io import UserError, setup_logging, write_json
from distillery.data.prepared import read_labels, read_split
from distillery.lmeval.backends import model_kind, onnx_tokenizer
from distillery.lmeval.harness import score
from distillery.lmeval.task import TaskSpec, default_prompt, default_verbalizers, write_task

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m distillery.lmeval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a model folder or an .onnx file")
    ap.add_argument("--data", required=True, help="prepared folder (labels.json, eval.jsonl)")
    ap.add_argument("--split", default="eval", help="split of --data to score (default eval)")
    ap.add_argument("--tokenizer", help="tokenizer folder (needed for .onnx files)")
    ap.add_argument("--prompt", type=unescape,
                    help="format string with {text} (and {text_pair} for pairs); \\n and \\t "
                         "are a newline and a tab")
    ap.add_argument("--verbalizers", nargs="+", metavar="V", type=unescape,
                    help="one continuation per label, in label order (default ' <label name>')")
    ap.add_argument("--task-name", default="distillery_eval")
    ap.add_argument("--task-dir", help="write the task here and keep it (default: a temp dir)")
    ap.add_argument("--limit", type=int, help="score the first N examples only")
    ap.add_argument("--num-fewshot", type=int, help="examples from train.jsonl before each prompt")
    ap.add_argument("--batch-size", type=int, default=64, help="classifier batch")
    ap.add_argument("--max-length", type=int,
                    help="tokens per example (default: the ONNX metadata, else teacher.max_length "
                         "of --params)")
    ap.add_argument("--params", default="params.yaml",
                    help="read teacher.max_length here when --max-length is not given")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--metrics", help="also write the scores to this JSON file")
    return ap.parse_args(argv)


def unescape(value: str) -> str:
    """``\\n``, ``\\t`` and ``\\\\`` typed on a command line as a newline, a tab and a
    backslash (any other backslash is kept)."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m[1]], value)


def build_spec(data: str | Path, split: str, name: str, prompt: str | None,
               verbalizers: list[str] | None) -> TaskSpec:
    """The task of ``<data>/<split>.jsonl`` (few-shot pool: ``train.jsonl`` when present)."""
    data = Path(data)
    labels = read_labels(data / "labels.json")
    pair = read_split(data / f"{split}.jsonl").pairs is not None
    fewshot = data / "train.jsonl" if split != "train" else None
    return TaskSpec(
        name=name, prompt=default_prompt(pair) if prompt is None else prompt,
        verbalizers=default_verbalizers(labels) if verbalizers is None else verbalizers,
        labels=labels, pair=pair, data_file=str(data / f"{split}.jsonl"),
        fewshot_file=str(fewshot) if fewshot is not None and fewshot.is_file() else None,
    )


def max_length(args: argparse.Namespace) -> int | None:
    """``--max-length``, else (torch folders) ``teacher.max_length`` of ``--params``; None
    lets the adapter take an ONNX file's own."""
    if args.max_length is not None or model_kind(args.model) == "onnx":
        return args.max_length
    if not Path(args.params).is_file():
        raise UserError(f"--max-length: a model folder does not record its tokens per example "
                        f"and --params {args.params} does not exist to read teacher.max_length "
                        "from; give --max-length or --params")
    return load_section(args.params, "teacher", TeacherParams).max_length


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    spec = build_spec(args.data, args.split, args.task_name, args.prompt, args.verbalizers)
    spec.validate()
    model_args = {"path": args.model, "max_length": max_length(args), "tokenizer":
                  onnx_tokenizer(args.model, args.tokenizer)
                  if model_kind(args.model) == "onnx" else args.tokenizer}
    model_args = {k: v for k, v in model_args.items() if v is not None}
    with tempfile.TemporaryDirectory(prefix="distillery-lmeval-") as tmp:
        task_yaml = write_task(args.task_dir or tmp, spec)
        logger.info("lm-eval task %s written to %s", spec.name, task_yaml)
        scores = score(task_yaml, model_args, limit=args.limit, num_fewshot=args.num_fewshot,
                       batch_size=args.batch_size, device=args.device)
    if args.metrics:
        write_json(args.metrics, {"task": spec.name, "model": args.model, **scores})
    print(f"{spec.name}: acc = {scores['acc']:.6f} ± {scores['acc_stderr']:.4f} "
          f"({scores['n']} examples, lm-eval, model {args.model})")
