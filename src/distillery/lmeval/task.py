"""An lm-eval ``multiple_choice`` task over a prepared split: prompt, verbalizers, YAML.

A :class:`TaskSpec` is what makes a prepared split an lm-eval task: a prompt template with
``{text}`` (and ``{text_pair}`` for sentence pairs) and one verbalizer per label (the
continuation lm-eval scores for that class). :func:`write_task` writes it as a task YAML in
lm-eval's own format (``output_type: multiple_choice``, the ``json`` builder on the local jsonl,
``doc_to_text`` / ``doc_to_choice`` / ``doc_to_target``, metric ``acc``; see
``lm_eval/tasks/glue/sst2/default.yaml`` for the same shape on the Hub's SST-2) plus a JSON copy
of the spec that the classifier adapter (:mod:`distillery.lmeval.adapter`) reads back.

The YAML's ``process_docs`` names :func:`check_docs` of this module, so that loading the task
imports :mod:`distillery.lmeval` and registers the ``distillery`` model with lm-eval: that is
what lets the stock ``lm_eval run --tasks <file>.yaml`` command use the adapter.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from distillery.core.io import UserError, atomic_path

FIELDS = ("text", "text_pair")
"""Placeholders a prompt may use: the columns of a prepared jsonl."""
DEFAULT_PROMPT = "Review: {text}\nSentiment:"
DEFAULT_PAIR_PROMPT = "{text}\nQuestion: {text_pair}\nAnswer:"
SPEC_SUFFIX = ".json"
"""The spec is stored next to ``<name>.yaml`` as ``<name>.json``."""
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def default_prompt(pair: bool) -> str:
    """The prompt used when none is given, by the lm-eval CLI and by causal-LM teachers
    (``teacher.prompt: null``); its wording does not change a classifier's score."""
    return DEFAULT_PAIR_PROMPT if pair else DEFAULT_PROMPT


def default_verbalizers(labels: Sequence[str]) -> list[str]:
    """One verbalizer per label: the label name after a space (``" negative"``), the
    continuation a language model would write after ``"Sentiment:"``."""
    return [f" {name}" for name in labels]


@dataclass
class TaskSpec:
    """One lm-eval task over a prepared split, and how a classifier's classes read in it."""

    name: str
    """lm-eval task name (``--tasks``)."""
    prompt: str
    """Python format string with ``{text}`` (and ``{text_pair}`` for pairs): ``doc_to_text``."""
    verbalizers: list[str]
    """Continuation of class ``i`` (``doc_to_choice``); lm-eval adds no delimiter before it."""
    labels: list[str]
    """Class names (index = class id), from ``labels.json``."""
    pair: bool
    """Whether examples are sentence pairs (``text_pair`` column)."""
    data_file: str
    """The scored split (absolute path of a prepared ``eval.jsonl``)."""
    fewshot_file: str | None = None
    """Split few-shot examples are drawn from (``train.jsonl``); None: lm-eval's default."""

    def validate(self, where: str = "") -> None:
        """Raise one :class:`~distillery.core.io.UserError` listing every problem, each naming its
        key (``where`` prefixes the keys, e.g. ``"lmeval."`` for a params section)."""
        problems = prompt_problems(self.prompt, self.pair, f"{where}prompt")
        problems += verbalizer_problems(self.verbalizers, self.labels, f"{where}verbalizers")
        if not _NAME.fullmatch(self.name):
            problems.append(f"{where}task_name: got {self.name!r}; use letters, digits, "
                            "'_', '-' and '.' (it becomes a file name and an lm-eval task name)")
        if problems:
            raise UserError("invalid lm-eval task:\n  - " + "\n  - ".join(problems))

    def render(self, text: str, text_pair: str | None = None) -> str:
        """The prompt of one example, exactly as lm-eval renders ``doc_to_text``."""
        return self.prompt.format(text=text, text_pair=text_pair)


def prompt_problems(prompt: str, pair: bool, key: str = "prompt") -> list[str]:
    """What is wrong with ``prompt`` (empty list: nothing)."""
    try:
        parts = list(string.Formatter().parse(prompt))
    except ValueError as err:  # a lone '{' or '}'
        return [f"{key}: {prompt!r} is not a format string ({err}); write a literal brace "
                "as '{{' or '}}'"]
    problems = []
    names = [f for _, f, _, _ in parts if f is not None]
    for _, f, spec, conv in parts:
        if f is not None and (f not in FIELDS or spec or conv):
            problems.append(f"{key}: placeholder {{{f}{'!' + conv if conv else ''}"
                            f"{':' + spec if spec else ''}}} is not allowed; use {{text}}"
                            + (" and {text_pair}" if pair else ""))
    if "text" not in names:
        problems.append(f"{key}: {prompt!r} has no {{text}} placeholder (where the example goes)")
    if pair and "text_pair" not in names:
        problems.append(f"{key}: {prompt!r} has no {{text_pair}} placeholder; the data are "
                        "sentence pairs, so the prompt needs both {text} and {text_pair}")
    if not pair and "text_pair" in names:
        problems.append(f"{key}: {prompt!r} uses {{text_pair}} but the data are single texts")
    literal = "".join(lit for lit, *_ in parts)
    if all(c.isdigit() for c in literal):
        problems.append(f"{key}: {prompt!r} needs some text besides the placeholders "
                        "(lm-eval reads an all-digit prompt as a number)")
    return problems


def verbalizer_problems(verbalizers: Sequence[str], labels: Sequence[str],
                        key: str = "verbalizers") -> list[str]:
    """What is wrong with ``verbalizers`` for these labels (empty list: nothing)."""
    problems = []
    if len(verbalizers) != len(labels):
        problems.append(f"{key}: {len(verbalizers)} given for {len(labels)} labels "
                        f"({', '.join(labels)}); give one per label, in label order")
    seen: dict[str, int] = {}
    for i, v in enumerate(verbalizers):
        if not isinstance(v, str) or not v.strip():
            problems.append(f"{key}[{i}]: {v!r} is empty; a verbalizer needs visible text")
            continue
        label = labels[i] if i < len(labels) else f"#{i}"
        if v.strip() in seen:
            j = seen[v.strip()]
            other = labels[j] if j < len(labels) else f"#{j}"
            problems.append(f"{key}: labels {other!r} and {label!r} have the same verbalizer "
                            f"{v.strip()!r}; each label needs its own")
        seen.setdefault(v.strip(), i)
    return problems


# --------------------------------------------------------------------------- files


def to_jinja(prompt: str) -> str:
    """The Jinja template lm-eval renders for ``doc_to_text``: placeholders become
    ``{{text}}`` / ``{{text_pair}}``; literal text that Jinja would read is kept raw."""
    out = []
    for lit, f, _, _ in string.Formatter().parse(prompt):
        if lit:
            jinja_syntax = any(s in lit for s in ("{{", "{%", "{#", "}}", "%}", "#}"))
            out.append(f"{{% raw %}}{lit}{{% endraw %}}" if jinja_syntax else lit)
        if f is not None:
            out.append(f"{{{{{f}}}}}")
    return "".join(out)


def task_config(spec: TaskSpec, cache_dir: Path) -> dict[str, Any]:
    """The lm-eval task config of ``spec`` (without ``process_docs``, added as a tag)."""
    data_files = {"test": spec.data_file}
    if spec.fewshot_file is not None:
        data_files["train"] = spec.fewshot_file
    config: dict[str, Any] = {
        "task": spec.name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": data_files, "cache_dir": str(cache_dir)},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": to_jinja(spec.prompt),
        "doc_to_choice": list(spec.verbalizers),
        "doc_to_target": "label",
        "target_delimiter": "",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }
    if spec.fewshot_file is not None:
        config["fewshot_split"] = "train"
    return config


def write_task(folder: str | Path, spec: TaskSpec) -> Path:
    """Write ``<folder>/<name>.yaml`` (the lm-eval task) and ``<name>.json`` (the spec).

    The ``datasets`` cache of the task goes to ``<folder>/hf_datasets_cache``, so that
    scoring writes nothing outside the task folder. Paths in the YAML are absolute: the task
    loads from any working directory.

    Returns:
        The YAML file (pass it, or ``folder`` as ``include_path``, to lm-eval).

    Raises:
        UserError: ``spec`` is invalid (:meth:`TaskSpec.validate`), or the prompt renders
            differently through lm-eval's Jinja than through Python.
    """
    from lm_eval.utils import apply_template

    spec.validate()
    folder = Path(folder).resolve()
    spec = TaskSpec(**{**asdict(spec), "data_file": str(Path(spec.data_file).resolve()),
                       "fewshot_file": spec.fewshot_file and str(Path(spec.fewshot_file)
                                                                  .resolve())})
    config = task_config(spec, folder / "hf_datasets_cache")
    probe = {"text": "a {{b}} c", "text_pair": "d {% e %} f"}
    if apply_template(config["doc_to_text"], probe) != spec.render(**probe):
        raise UserError(f"prompt: {spec.prompt!r} cannot be written as an lm-eval template "
                        "(it renders differently through Jinja); simplify its literal text")
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000)
    text += f"process_docs: !function {__name__}.check_docs\n"
    with atomic_path(folder / f"{spec.name}.yaml") as tmp:
        tmp.write_text(text, encoding="utf-8")
    with atomic_path(folder / f"{spec.name}{SPEC_SUFFIX}") as tmp:
        tmp.write_text(json.dumps(asdict(spec), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    return folder / f"{spec.name}.yaml"


def read_task(path: str | Path) -> TaskSpec:
    """The spec written by :func:`write_task`, given its YAML, its JSON or their folder
    (which must then hold exactly one task)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.glob(f"*{SPEC_SUFFIX}") if p.with_suffix(".yaml").is_file())
        if len(found) != 1:
            names = ", ".join(p.stem for p in found) or "none"
            raise UserError(f"task: {path} must hold exactly one task written by "
                            f"distillery.lmeval (found: {names}); give the task's .yaml file")
        path = found[0]
    path = path.with_suffix(SPEC_SUFFIX)
    if not path.is_file():
        raise UserError(f"task: {path} not found: write the task with "
                                "`python -m distillery.lmeval` (distillery.lmeval.write_task)")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return TaskSpec(**raw)


def check_docs(dataset):
    """lm-eval ``process_docs`` hook: the split as it is, after checking that it is a
    labelled prepared split (``text``, ``label`` >= 0). Naming it in the YAML also makes
    lm-eval import :mod:`distillery.lmeval`, which registers the ``distillery`` model."""
    missing = {"text", "label"} - set(dataset.column_names)
    if missing:
        raise UserError(f"not a prepared split: no column {', '.join(sorted(missing))}")
    if any(y < 0 for y in dataset["label"]):
        raise UserError("cannot score unlabelled examples (label -1)")
    return dataset
