"""A ready-to-deploy Hugging Face Space for one exported model (the ``space`` stage).

The folder holds everything the Space needs and nothing of the pipeline: ``app.py`` (a copy of
:mod:`distillery.serve.space_app`), ``requirements.txt`` (gradio, onnxruntime, tokenizers, numpy,
pinned to the versions the pipeline ran; no torch), ``model.onnx``, ``tokenizer.json``,
``examples.jsonl`` from the eval split, ``space.json`` (what the page shows, and its input
cap) and a ``README.md`` whose YAML header is the Space's configuration (the Python version
included: that of the interpreter whose packages the requirements pin) and whose body carries
the model's measured accuracy, latency and size from ``metrics/benchmark.json``. Upload the
folder as a Gradio Space, or run ``python app.py`` in it.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
from pathlib import Path

from distillery.core.io import UserError, atomic_path
from distillery.serve import space_app

APP_REQUIREMENTS = {"gradio": "gradio", "onnxruntime": "onnxruntime", "tokenizers": "tokenizers",
                    "numpy": "numpy"}
"""Requirement name -> the installed distribution whose version it pins."""


def _installed(dist: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        if dist == "onnxruntime":  # the pipeline may run the GPU build; the Space needs the CPU one
            return importlib.metadata.distribution("onnxruntime-gpu")
        raise


def _version(dist: str) -> str:
    return _installed(dist).version


def requirements() -> str:
    """``requirements.txt``: the app's four dependencies at the versions installed here."""
    return "".join(f"{name}=={_version(dist)}\n" for name, dist in APP_REQUIREMENTS.items())


def python_version(version: str | None = None) -> str:
    """``python_version`` of the Space's header: this interpreter's ``major.minor`` (or
    ``version``), the Python the pinned packages were installed for (the hosting default, 3.10,
    cannot install numpy 2.3+, for one); checked against each pinned package's
    ``Requires-Python``."""
    from packaging.specifiers import SpecifierSet

    version = version or f"{sys.version_info.major}.{sys.version_info.minor}"
    for dist in APP_REQUIREMENTS.values():
        installed = _installed(dist)
        needs = installed.metadata.get("Requires-Python") or ""
        if version not in SpecifierSet(needs):
            raise RuntimeError(f"{dist} {installed.version} requires Python {needs}, this is "
                               f"{version}: the environment is inconsistent")
    return version


def resolve_variant(wanted: str, report: dict | None) -> str:
    """``space.variant``, with ``recommended`` read from ``metrics/report.json``."""
    if wanted != "recommended":
        return wanted
    recommended = (report or {}).get("recommended")
    if not recommended:
        raise UserError("space.variant is 'recommended' but metrics/report.json names no "
                         "recommended variant (no student within report.max_latency_ms / "
                         "max_size_mb): set space.variant to an ONNX variant")
    if "-onnx-" not in recommended:
        raise UserError(f"the recommended variant {recommended!r} is not an ONNX file: set "
                         "space.variant to an '-onnx-' variant")
    return recommended


def _row(name: str, m: dict) -> str:
    return (f"| {name} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['latency_ms_p50']:.2f}"
            f" / {m['latency_ms_p95']:.2f} | {m['throughput_per_s']:.0f} | {m['size_mb']:.1f} |")


def readme(title: str, variant: str, bench: dict, labels: list[str], metric: str,
           batch1_score: float) -> str:
    """The Space's README: its YAML configuration header and the measured numbers.

    ``batch1_score`` is the eval ``metric`` scored one example at a time, as the app runs
    (the table's numbers come from batches of the benchmark stage).
    """
    ours = bench[variant]
    header = {"title": title, "emoji": "⚗️", "colorFrom": "indigo", "colorTo": "green",
              "sdk": "gradio", "sdk_version": _version("gradio"),
              "python_version": python_version(), "app_file": "app.py",
              "pinned": False, "license": "apache-2.0",
              "short_description": f"{variant}: compressed with Distillery"[:60]}
    yaml = [f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, str) else str(v).lower()}"
            for k, v in header.items()]
    lines = ["---", *yaml, "---", "", f"# {title}", "",
             f"`{variant}` ({ours.get('n_params', 0) / 1e6:.1f}M parameters, "
             f"{ours['size_mb']:.1f} MB) classifies text into {len(labels)} classes: "
             + ", ".join(f"`{n}`" for n in labels) + ".", "",
             "Measured by the Distillery pipeline (`metrics/benchmark.json`, eval split, "
             f"batch-1 latency, {bench.get('threads', {}).get('onnxruntime', '?')} ONNX Runtime "
             "threads on the machine that ran it):", "",
             "| model | accuracy | macro-F1 | latency p50 / p95 (ms) | throughput (ex/s) "
             "| size (MB) |", "|---|---|---|---|---|---|", _row(variant, ours)]
    for teacher in ("teacher-onnx-int8", "teacher-torch-fp32"):
        if teacher in bench and isinstance(bench[teacher], dict):
            lines.append(_row(teacher, bench[teacher]))
    lines += ["", f"One sentence at a time, as this app runs it, its eval {metric} is "
              f"{batch1_score:.4f} (the table scores batches; dynamic int8 quantises activations "
              "per batch, which can flip a borderline example).",
              "", "Run it locally: `pip install -r requirements.txt && python app.py`, then "
              "open http://127.0.0.1:7860.", ""]
    if "vocab" in variant:
        lines += ["The vocabulary of this model is pruned to the tokens of its training text: "
                  "a token it never saw reads as `[UNK]`.", ""]
    return "\n".join(lines)


def write(out: str | Path, model: Path, tokenizer: Path, variant: str, title: str,
          bench: dict, examples: list[dict], metric: str, batch1_score: float,
          max_input_chars: int = space_app.MAX_INPUT_CHARS) -> None:
    """Write the Space folder ``out`` (atomically: all of it or nothing); see :func:`readme`.

    ``max_input_chars`` goes to ``space.json``: the app refuses longer inputs."""
    labels = json.loads(_meta(model)["labels"])
    if variant not in bench:
        raise UserError(f"{variant!r} has no measurements in metrics/benchmark.json: run "
                         "`dvc repro benchmark`")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        shutil.copyfile(space_app.__file__, tmp / "app.py")
        shutil.copyfile(model, tmp / "model.onnx")
        shutil.copyfile(tokenizer, tmp / "tokenizer.json")
        (tmp / "requirements.txt").write_text(requirements())
        (tmp / "examples.jsonl").write_text(
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples),
            encoding="utf-8")
        intro = (f"`{variant}`, compressed from its teacher by the "
                 "Distillery pipeline. The time shown is one call "
                 "of the model on this machine (tokenisation excluded).")
        (tmp / "space.json").write_text(json.dumps(
            {"variant": variant, "title": title, "intro": intro,
             "max_input_chars": max_input_chars}, indent=2) + "\n")
        card = readme(title, variant, bench, labels, metric, batch1_score)
        (tmp / "README.md").write_text(card, encoding="utf-8")


def _meta(model: Path) -> dict[str, str]:
    from distillery.export.onnx_export import read_metadata

    meta = read_metadata(model)
    if "labels" not in meta:
        raise UserError(f"{model} has no label metadata: rerun `dvc repro export`")
    return meta
