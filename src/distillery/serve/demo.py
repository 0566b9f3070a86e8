"""``python -m distillery.serve.demo``: try the models of the current pipeline run in a browser.

The teacher (PyTorch, as the study measured it) and the chosen variants side by side on the
same sentence: predicted label, class probabilities and the time of that call. The default
variant is the one ``metrics/report.json`` recommends, else the int8 ONNX student. Examples
from the eval split are one click away, those where teacher and student disagree first.

With a causal-LM teacher, stage ``llm``'s generation variants (``models/llm``) get a second tab
(:mod:`distillery.serve.generate`): a prompt, greedy answers, time to first token and tokens/s.

Runs offline and binds to 127.0.0.1 unless told otherwise. The page is
:mod:`distillery.serve.space_app`'s, the same one the ``space`` stage ships.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillery.core.io import UserError
from distillery.data.prepared import LABELS_FILE, Split, _read_labels_file, read_split
from distillery.serve import space_app

logger = logging.getLogger(__name__)

TORCH_VARIANTS = {"teacher-torch-fp32": "teacher", "student-torch-fp32": "student"}
"""Variant name -> the model folder (under ``--models``) holding it."""

STAGE_OF = {"teacher": "hpo", "student": "distill", "student_pruned": "compress",
            "onnx": "export", "prepared": "prepare"}
"""Output folder -> the stage that writes it (for 'run `dvc repro <stage>`' messages)."""


class TorchClassifier:
    """A saved classifier folder, run by PyTorch through the pipeline's own loading path
    (:func:`distillery.modeling.loading.load_classifier`) and the inputs of
    :func:`distillery.data.prepared.encode`, tokenised once per call by a
    :class:`~distillery.serve.space_app.Encoder` over a private copy of the folder's fast
    tokenizer (``transformers`` changes its tokenizer's truncation settings on every call).
    """

    def __init__(self, folder: str | Path, name: str, max_length: int,
                 sentence_pair: bool) -> None:
        import torch

        from distillery.data.prepared import model_inputs
        from distillery.modeling.loading import load_classifier, load_tokenizer

        self.model = load_classifier(str(folder)).eval()
        self.tokenizer = load_tokenizer(str(folder))
        self.encode = space_app.Encoder(self.tokenizer.backend_tokenizer, max_length,
                                        model_inputs(self.tokenizer, sentence_pair),
                                        direction=self.tokenizer.truncation_side)
        cfg = self.model.config
        self.labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
        self.name, self.max_length, self.sentence_pair = name, max_length, sentence_pair
        n = sum(p.numel() for p in self.model.parameters())
        self.description = f"PyTorch CPU · fp32 · {n / 1e6:.1f}M parameters"
        self._torch = torch
        space_app.warm_up(self)

    def predict(self, text: str, pair: str | None = None) -> space_app.Prediction:
        feeds, tokens = self.encode(text, pair)
        enc = {k: self._torch.from_numpy(v) for k, v in feeds.items()}
        with self._torch.inference_mode():
            start = time.perf_counter()
            logits = self.model(**enc).logits  # (1, C)
            ms = (time.perf_counter() - start) * 1e3
        return space_app.prediction(logits[0].float().numpy(), self.labels, ms, tokens,
                                    self.max_length)


@dataclass
class Paths:
    """Where the pipeline's outputs are (the defaults are ``dvc.yaml``'s)."""

    models: Path = Path("models")
    data: Path = Path("data/prepared")
    report: Path = Path("metrics/report.json")
    params: Path = Path("params.yaml")


def onnx_variants(folder: Path) -> dict[str, Path]:
    """Variant name (from each file's metadata) -> ONNX file, for files in ``folder``."""
    from distillery.export.onnx_export import read_metadata

    found = {}
    for path in sorted(folder.glob("*.onnx")):
        variant = read_metadata(path).get("variant")
        if variant:
            found[variant] = path
    return found


def default_variants(paths: Paths) -> list[str]:
    """The report's recommended variant, else the int8 ONNX student."""
    import json

    if paths.report.is_file():
        recommended = json.loads(paths.report.read_text()).get("recommended")
        if recommended:
            return [recommended]
    return ["student-onnx-int8"]


def _missing(path: Path, what: str) -> str:
    stage = STAGE_OF.get(path.name, STAGE_OF.get(path.parent.name, "export"))
    return f"{what} {path} not found: run `dvc repro {stage}`"


def load_models(names: list[str], paths: Paths, max_length: int,
                sentence_pair: bool) -> tuple[list[space_app.Classifier], list[str]]:
    """Build the classifiers named ``names``; problems (missing files) are returned, not
    raised, so the page can say which stage to run."""
    models: list[space_app.Classifier] = []
    problems: list[str] = []
    onnx_dir = paths.models / "onnx"
    onnx = onnx_variants(onnx_dir) if onnx_dir.is_dir() else {}
    for name in names:
        if name in TORCH_VARIANTS:
            folder = paths.models / TORCH_VARIANTS[name]
            if not (folder / "config.json").is_file():
                problems.append(_missing(folder, f"model folder for {name}:"))
                continue
            models.append(TorchClassifier(folder, name, max_length, sentence_pair))
        elif name in onnx:
            owner = "teacher" if name.startswith("teacher") else "student"
            tokenizer = paths.models / owner / "tokenizer.json"
            if not tokenizer.is_file():
                problems.append(_missing(tokenizer.parent, f"tokenizer of {name}:"))
                continue
            models.append(space_app.OnnxClassifier(onnx[name], tokenizer, name=name))
        elif not onnx:
            problems.append(_missing(onnx_dir, f"ONNX models for {name}:"))
        else:
            known = ", ".join([*TORCH_VARIANTS, *onnx])
            problems.append(f"unknown variant {name!r}; this run has: {known}")
    return models, problems


def pick_examples(split: Split, preds: dict[str, np.ndarray], labels: list[str],
                  n: int = 8) -> list[dict]:
    """Up to ``n`` examples of ``split``: about half where the models disagree (with one
    model: where it is wrong), then ones every model gets right.

    Args:
        split: labelled examples.
        preds: model name -> its predicted class ids on ``split``.
        labels: class names.
        n: examples wanted.
    """
    stacked = np.stack(list(preds.values()))  # (M, N)
    gold = np.asarray(split.labels)
    hard = (stacked != stacked[0]).any(axis=0) if len(stacked) > 1 else stacked[0] != gold
    right = (stacked == gold).all(axis=0)
    chosen = list(np.flatnonzero(hard)[: (n + 1) // 2])
    chosen += list(np.flatnonzero(right & ~hard)[: n - len(chosen)])
    kind = "models disagree" if len(stacked) > 1 else "wrong"
    rows = []
    for i in chosen:
        said = " · ".join(f"{m}: {labels[p[i]]}" for m, p in preds.items())
        head = kind if hard[i] else "right"
        row = {"text": split.texts[i], "note": f"{head} · gold {labels[gold[i]]} · {said}"}
        if split.pairs is not None:
            row["text_pair"] = split.pairs[i]
        rows.append(row)
    return rows


def predicted_ids(model: space_app.Classifier, split: Split) -> np.ndarray:
    """Class ids the pipeline's own scoring path gives ``model`` on ``split``."""
    from distillery.measure.evaluate import onnx_logits, predict_logits
    from distillery.modeling.loading import load_tokenizer

    if isinstance(model, TorchClassifier):
        logits = predict_logits(model.model, split, model.tokenizer, model.max_length)
    else:
        folder = str(model.tokenizer_path.parent)  # type: ignore[attr-defined]
        session = model.session  # type: ignore[attr-defined]
        logits = onnx_logits(session, split, load_tokenizer(folder), model.max_length)
    return logits.argmax(axis=-1)


def build(variants: list[str] | None, paths: Paths, examples: int = 8, scan: int = 300):
    """The demo page for ``teacher-torch-fp32`` plus ``variants`` (None: the default)."""
    from distillery.config.base import load_section
    from distillery.config.space import SpaceParams
    from distillery.config.teacher import TeacherParams

    max_length = load_section(paths.params, "teacher", TeacherParams).max_length
    max_chars = load_section(paths.params, "space", SpaceParams).max_input_chars
    meta = _read_labels_file(paths.data / LABELS_FILE)
    names = ["teacher-torch-fp32", *(variants or default_variants(paths))]
    models, problems = load_models(list(dict.fromkeys(names)), paths, max_length,
                                   bool(meta.get("pair")))
    if not models:
        raise UserError("no model to show: " + "; ".join(problems))
    rows: list[dict] = []
    eval_file = paths.data / "eval.jsonl"
    if examples and eval_file.is_file():
        split = read_split(eval_file)
        split = split.subset(range(min(scan, len(split))))
        preds = {m.name: predicted_ids(m, split) for m in models}
        rows = pick_examples(split, preds, meta["names"], examples)
    intro = ("The same input through the teacher and the compressed student(s) of this "
             "pipeline run. Times are single calls on this machine, model only "
             "(tokenisation excluded); the benchmark stage measures them properly.")
    return space_app.build_ui(models, rows, title="Distillery: teacher vs student",
                              intro=intro, problems=problems, max_chars=max_chars)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m distillery.serve.demo", description=__doc__)
    parser.add_argument("--variants", nargs="*", default=None,
                        help="variants beside the teacher, e.g. student-onnx-int8 "
                             "student-torch-fp32 (default: the report's recommended one)")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--examples", type=int, default=8, help="examples offered (0: none)")
    parser.add_argument("--models", type=Path, default=Paths.models)
    parser.add_argument("--data", type=Path, default=Paths.data)
    parser.add_argument("--report", type=Path, default=Paths.report)
    parser.add_argument("--params", type=Path, default=Paths.params)
    args = parser.parse_args(argv)
    from distillery.core.io import setup_logging

    setup_logging()
    paths = Paths(args.models, args.data, args.report, args.params)
    if args.list:
        onnx_dir = paths.models / "onnx"
        found = [*TORCH_VARIANTS, *(onnx_variants(onnx_dir) if onnx_dir.is_dir() else {})]
        print("\n".join(found))
        return
    ui = build(args.variants, paths, args.examples)
    llm_dir = paths.models / "llm"
    if any(llm_dir.glob("*.onnx")):  # stage llm ran with a causal-LM teacher: a second tab
        import gradio as gr

        from distillery.config.base import load_section
        from distillery.config.space import SpaceParams
        from distillery.serve import generate

        cap = load_section(paths.params, "space", SpaceParams).max_input_chars
        ui = gr.TabbedInterface([ui, generate.build_ui(generate.Generator(llm_dir), cap)],
                                ["classify", "generate"])
    ui.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    from distillery.core.io import run_main

    run_main(main)
