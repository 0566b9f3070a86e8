"""General language-modelling ability, offline: lm-eval's perplexity of a causal LM on a
reference English text that ships with a dependency.

The text: the dataset descriptions scikit-learn ships in ``sklearn/datasets/descr/*.rst``
(scikit-learn is pinned in ``pyproject.toml``, so the text changes only when the pin does).
:data:`REFERENCE_FILES` are the eleven descriptions without Python doctests (left out:
``lfw``, ``rcv1``, ``twenty_newsgroups``): ~3,200 words of technical English prose on
datasets, with reStructuredText markup (section rules, field lists, a few tables), each file
one document. Its folder is found with ``importlib.util.find_spec("sklearn")`` (sklearn is
not imported); a missing file is a ``FileNotFoundError`` naming it.

The task: lm-eval's own ``loglikelihood_rolling`` output type over a local jsonl (one
``{"text": ...}`` document per line), the shape of lm-eval's ``wikitext`` task. lm-eval cuts
each document into disjoint windows of the model's context (``HFLM.max_length``; every token
is predicted once, the first from the BOS / EOS prefix token) and sums the token
log-likelihoods per document. The ``HFLM`` is built with ``add_bos_token=False``: by default it
tokenises the document with the tokenizer's own special tokens, so a tokenizer that adds a
BOS (Llama's) gets two, and ``log P(BOS | BOS)`` is counted as part of the text
(lm-evaluation-harness issue #3333). Its metrics, all computed by lm-eval over the whole text:

- ``word_perplexity`` = ``exp(-sum log-likelihood / words)``, words = whitespace-separated
  pieces of each document (lm-eval's ``count_words``): word level, so it compares models
  with different tokenizers;
- ``byte_perplexity`` = the same per UTF-8 byte; ``bits_per_byte`` = ``-sum ll / bytes /
  ln 2``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from distillery.core.io import UserError, atomic_path
from distillery.lmeval.harness import run
from distillery.lmeval.hflm import hf_lm

REFERENCE_PACKAGE = "sklearn"
REFERENCE_DIR = ("datasets", "descr")
"""Folder of the reference text inside the package."""
REFERENCE_FILES = (
    "breast_cancer.rst", "california_housing.rst", "covtype.rst", "diabetes.rst", "digits.rst",
    "iris.rst", "kddcup99.rst", "linnerud.rst", "olivetti_faces.rst",
    "species_distributions.rst", "wine_data.rst",
)
TEXT_TASK = "distillery_reference_text"
"""Name (and file stem) of the perplexity task."""
METRICS = ("word_perplexity", "byte_perplexity", "bits_per_byte")
AGGREGATION = {"word_perplexity": "weighted_perplexity", "byte_perplexity": "weighted_perplexity",
               "bits_per_byte": "bits_per_byte"}
"""lm-eval's aggregation of each metric over the documents (its defaults, written out)."""


def reference_folder() -> Path:
    """``sklearn/datasets/descr`` of the installed scikit-learn.

    Raises:
        FileNotFoundError: scikit-learn is not installed.
    """
    spec = importlib.util.find_spec(REFERENCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the reference text for perplexity ships with scikit-learn, "
                                "which is not installed (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*REFERENCE_DIR)


def reference_documents(folder: str | Path | None = None) -> list[str]:
    """The reference text, one document per file of :data:`REFERENCE_FILES` (stripped).

    Args:
        folder: where the files are; None: :func:`reference_folder`.

    Raises:
        FileNotFoundError: naming every missing file.
    """
    folder = Path(folder) if folder is not None else reference_folder()
    missing = [name for name in REFERENCE_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"reference text for perplexity: {', '.join(missing)} not in "
                                f"{folder} (shipped by scikit-learn 1.9.1, the pinned version; "
                                "reinstall it, or update distillery.lmeval.perplexity."
                                "REFERENCE_FILES)")
    return [(folder / name).read_text(encoding="utf-8").strip() for name in REFERENCE_FILES]


def describe(documents: Sequence[str]) -> dict[str, Any]:
    """Words (as lm-eval counts them), bytes and SHA-256 of a text, for the record."""
    digest = hashlib.sha256("\n\x00".join(documents).encode("utf-8")).hexdigest()
    return {"documents": len(documents),
            "words": sum(len(re.split(r"\s+", d)) for d in documents),
            "bytes": sum(len(d.encode("utf-8")) for d in documents), "sha256": digest}


def write_text_task(folder: str | Path, documents: Sequence[str] | None = None,
                    name: str = TEXT_TASK) -> Path:
    """Write ``<folder>/<name>.jsonl`` (the documents) and ``<name>.yaml`` (the lm-eval
    ``loglikelihood_rolling`` task over it; its ``datasets`` cache in
    ``<folder>/hf_datasets_cache``).

    Args:
        documents: the text; None: :func:`reference_documents`.

    Returns:
        The task's YAML.
    """
    folder = Path(folder).resolve()
    documents = reference_documents() if documents is None else list(documents)
    if not documents or not all(d.strip() for d in documents):
        raise ValueError("perplexity needs non-empty documents")
    data = folder / f"{name}.jsonl"
    with atomic_path(data) as tmp:
        tmp.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n"
                               for d in documents), encoding="utf-8")
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)},
                           "cache_dir": str(folder / "hf_datasets_cache")},
        "test_split": "test",
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "text",
        "metric_list": [{"metric": m, "aggregation": AGGREGATION[m], "higher_is_better": False}
                        for m in METRICS],
        "metadata": {"version": 1.0, **describe(documents)},
    }
    with atomic_path(folder / f"{name}.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000),
                       encoding="utf-8")
    return folder / f"{name}.yaml"


def perplexity(model, tokenizer, task: str | Path, batch_size: int = 4,
               max_length: int | None = None) -> dict[str, float]:
    """lm-eval's perplexity of a causal LM on a task written by :func:`write_text_task`.

    Args:
        model / tokenizer: the causal LM (plain or peft-wrapped), wrapped in an ``HFLM`` with
            ``add_bos_token=False`` (module docstring).
        batch_size: rolling windows per forward.
        max_length: window length in tokens; None: the model's context length.

    Returns:
        ``word_perplexity``, ``byte_perplexity`` and ``bits_per_byte``.
    """
    task = Path(task)
    lm = hf_lm(model, tokenizer, batch_size, max_length, add_bos_token=False)
    found = run(lm, [task])["results"][task.stem]
    return {m: float(found[f"{m},none"]) for m in METRICS}
