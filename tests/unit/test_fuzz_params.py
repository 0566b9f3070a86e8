"""Property-based tests (hypothesis) of ``params.yaml`` validation.

Mutations of the repository's own ``params.yaml`` (wrong types, NaN / inf / negative / huge
numbers, empty lists, wrong list lengths, unknown keys, non-mapping sections and top level,
bad strings, seeds out of range, broken YAML text and bytes) go through the loader every stage
uses (:func:`~distillery.config.base.load_section`) inside :func:`~distillery.core.io.run_main`.
Each case either validates, into values the consumers accept, or ends with one ``error:``
message naming the ``section.key``, the value given and what is allowed: never a traceback.

Deterministic (``derandomize``), no example database written, a few seconds in all.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import math
import random
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from distillery.config.base import load_section
from distillery.config.reference import SECTIONS, section_class
from distillery.core.io import run_main
from tests.unit.fuzzing import fuzz

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
REAL: dict[str, Any] = yaml.safe_load(REPO_PARAMS.read_text())
CLASSES = {name: section_class(name) for name in SECTIONS}
INT64 = 2**63 - 1


# --------------------------------------------------------------------------- value strategies

ODD_NUMBERS = [0, -1, 1, 2, 0.5, 1.5, -0.0, 1e-300, 5e-324, 1e308, -1e308, math.nan, math.inf,
               -math.inf, 2**31, 2**32 - 1, 2**32, 2**63, -(2**63) - 1, 10**30, 10**400]
ODD_STRINGS = ["", " ", "\t", "all", "nan", ".inf", "none", "0", "1e-4", "env:", "env:1BAD",
               "env:DISTILLERY_STORAGE", "postgresql://u:pw@db-host/optuna", "sqlite:///x.db",
               "teacher-torch-fp32", "cuda:", "cuda:-1", "cuda:²", "cuda:٣", "cuda:1", "{",
               "}", "{text", "{text!r}", "{0}", "{text_pair}", "Review: {text}", "{text:>5}",
               "\x00\x1b\u202e", "é" * 3, "a" * 5000]
numbers = st.one_of(st.sampled_from(ODD_NUMBERS), st.integers(),
                    st.floats(allow_nan=True, allow_infinity=True))
strings = st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=12))
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=3),
    max_leaves=6,
)


def like(value: Any) -> st.SearchStrategy:
    """Odd values of the same shape as ``value``, so they reach the range checks."""
    if isinstance(value, bool):
        return scalars
    if isinstance(value, int | float):
        return numbers
    if isinstance(value, str):
        return strings
    if isinstance(value, list):
        item = like(value[0]) if value else scalars
        return st.one_of(st.lists(item, max_size=4),
                         st.lists(item, min_size=len(value), max_size=len(value)))
    return anything


# --------------------------------------------------------------------------- mutations

OPS = ("typed", "typed", "typed", "any", "delete", "unknown_key", "element", "not_a_mapping")


@st.composite
def mutated_section(draw) -> tuple[str, Any, list[str]]:
    """A section of the real params.yaml with 1-3 mutations, and the keys they touched."""
    name = draw(st.sampled_from(SECTIONS))
    section = copy.deepcopy(REAL[name])
    touched: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        target, prefix = section, ""
        if isinstance(target, dict) and isinstance(target.get("search_space"), dict) \
                and draw(st.booleans()):
            target, prefix = target["search_space"], "search_space."
        op = draw(st.sampled_from(OPS))
        if op == "not_a_mapping" or not isinstance(target, dict) or not target:
            section = draw(st.one_of(scalars, st.lists(scalars, max_size=3)))
            touched.append("")
            break
        key = draw(st.sampled_from(sorted(target, key=str)))
        touched.append(prefix + str(key))
        if op == "typed":
            target[key] = draw(like(target[key]))
        elif op == "any":
            target[key] = draw(anything)
        elif op == "delete":
            del target[key]
        elif op == "unknown_key":
            target[draw(st.sampled_from([f"{key}s", str(key).upper(), "extra", 1, None]))] = \
                draw(scalars)
        elif isinstance(target[key], list) and target[key]:  # "element": one item of a list
            i = draw(st.integers(0, len(target[key]) - 1))
            target[key][i] = draw(st.one_of(like(target[key][i]), scalars))
        else:
            target[key] = draw(like(target[key]))
    return name, section, touched


# --------------------------------------------------------------------------- the stage view


def dump(doc: Any) -> str:
    """YAML text of ``doc`` (libyaml's emitter when present: the test's own speed)."""
    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                     allow_unicode=True)



def run_loader(path: Path, names: list[str]) -> tuple[dict[str, Any] | None, str]:
    """Load ``names`` from ``path`` the way a stage does (inside ``run_main``): the objects
    (None when the stage stopped) and what it printed on stderr."""
    loaded: dict[str, Any] = {}

    def main() -> None:
        for name in names:
            loaded[name] = load_section(path, name, CLASSES[name])

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            run_main(main)
        except SystemExit as stop:
            assert stop.code == 1
            return None, err.getvalue()
    assert err.getvalue() == ""
    return loaded, ""


BULLET = re.compile(r"  - (?P<key>[a-z_]+(\.[A-Za-z0-9_]+)*): (?P<rest>.+)")


def assert_one_user_error(stderr: str, section: str) -> list[str]:
    """One ``error:`` message, no traceback; a section's problems as bullets, each naming
    ``section.key`` and the value given. Returns the bullets' keys."""
    assert "Traceback" not in stderr
    lines = stderr.rstrip("\n").split("\n")
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: ")
    assert not any(line.startswith("error:") for line in lines[1:]), stderr
    keys = []
    for line in lines[1:]:
        m = BULLET.fullmatch(line)
        assert m, f"not a '  - section.key: problem' line: {line!r}"
        assert m["key"] == section or m["key"].startswith(section + "."), line
        assert "got " in m["rest"] or m["rest"].startswith("unknown key"), \
            f"the problem does not show the value given: {line!r}"
        keys.append(m["key"])
    return keys


def _numbers(obj: Any) -> list[Any]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int | float):
        return [obj]
    if isinstance(obj, list | tuple):
        return [n for v in obj for n in _numbers(v)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in _numbers(v)]
    if dataclasses.is_dataclass(obj):
        return _numbers(dataclasses.asdict(obj))
    return []


def assert_consumers_accept(name: str, obj: Any) -> None:
    """What the stages do first with a validated section cannot fail on its values."""
    for v in _numbers(obj):
        assert math.isfinite(v) if isinstance(v, float) else abs(v) <= INT64, (name, v)
    for f in dataclasses.fields(obj):
        if f.name == "seed" or f.name.endswith("_seed"):
            np.random.seed(getattr(obj, f.name))
            random.Random(getattr(obj, f.name))
    if name == "hpo":
        from distillery.teachers.hpo import search_space

        for causal in (False, True):
            search_space(obj, causal).distributions()
        assert 0 <= obj.dropout[0] <= obj.dropout[1] < 1, obj.dropout
    if name == "teacher":
        if obj.prompt is not None:
            obj.prompt.format(text="a", text_pair="b")
        if obj.device.startswith("cuda:"):
            int(obj.device[5:])
    if name == "nas":
        for f in dataclasses.fields(obj.search_space):
            if f.name != "head_size":
                assert getattr(obj.search_space, f.name)
    if name == "data" and obj.label_names is not None:
        assert all(isinstance(n, str) and n.strip() for n in obj.label_names)


# --------------------------------------------------------------------------- properties


OTHERS = {name: dump({k: v for k, v in REAL.items() if k != name}) for name in SECTIONS}
"""The real params.yaml without one section, as YAML text (the mutated one is appended)."""


def test_mutated_sections_validate_or_stop_with_one_message(tmp_path, monkeypatch):
    """≥ 400 mutated sections through the stages' loader."""
    monkeypatch.delenv("DISTILLERY_DEBUG", raising=False)
    path = tmp_path / "params.yaml"
    seen: Counter = Counter()

    @fuzz(420)
    @given(mutated_section())
    def prop(case):
        name, section, touched = case
        path.write_text(OTHERS[name] + dump({name: section}))
        loaded, stderr = run_loader(path, [name])
        seen["cases"] += 1
        if loaded is None:
            seen["rejected"] += 1
            assert_one_user_error(stderr, name)
        else:
            assert_consumers_accept(name, loaded[name])

    prop()
    print(f"params sections: {dict(seen)}")
    assert seen["cases"] >= 400 and seen["rejected"] >= 200


ODD_DOCS = st.one_of(
    scalars, st.lists(scalars, max_size=3),
    st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans(), st.text(max_size=5)),
                    scalars, max_size=3),
    st.just({k: v for k, v in REAL.items() if k != "data"}),  # a missing section
)
TEXT = REPO_PARAMS.read_text()


@st.composite
def odd_files(draw) -> bytes:
    """A whole params file gone wrong: not a mapping, broken YAML, not UTF-8."""
    kind = draw(st.sampled_from(["doc", "splice", "bytes", "indent"]))
    if kind == "doc":
        return dump(draw(ODD_DOCS)).encode()
    if kind == "indent":  # tabs, or a line shifted: the classic hand-editing slips
        lines = TEXT.split("\n")
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(st.sampled_from(["\t", " ", "   ", "- "])) + lines[i]
        return "\n".join(lines).encode()
    pos = draw(st.integers(0, len(TEXT)))
    if kind == "splice":
        junk = draw(st.one_of(st.text(alphabet=string.punctuation + " \t\n", max_size=6),
                              st.sampled_from(["!!python/object:os.system", "&a", "*a", "{",
                                               "[", "'", '"', ": :", "? ", "%YAML 9.9\n",
                                               " 2024-13-45", "9" * 5000, " 0x", "\x85"])))
        return (TEXT[:pos] + junk + TEXT[pos:]).encode()
    raw = TEXT.encode()
    return raw[:pos] + draw(st.sampled_from([b"\xe9", b"\xff\xfe", b"\x00", b"\xc3"])) + raw[pos:]


def test_broken_params_files_validate_or_stop_with_one_message(tmp_path, monkeypatch):
    """≥ 100 whole files gone wrong, read by a stage loading every section."""
    monkeypatch.delenv("DISTILLERY_DEBUG", raising=False)
    path = tmp_path / "params.yaml"
    seen: Counter = Counter()

    @fuzz(120)
    @given(odd_files())
    def prop(raw):
        path.write_bytes(raw)
        loaded, stderr = run_loader(path, list(SECTIONS))
        seen["cases"] += 1
        if loaded is None:
            seen["rejected"] += 1
            assert "Traceback" not in stderr
            first, *rest = stderr.rstrip("\n").split("\n")
            assert first.startswith("error: ")
            assert all(line.startswith("  - ") for line in rest), stderr
        else:
            for name, obj in loaded.items():
                assert_consumers_accept(name, obj)

    prop()
    print(f"params files: {dict(seen)}")
    assert seen["cases"] >= 100 and seen["rejected"] >= 50


@pytest.mark.parametrize("doc", [[1, 2], "text", 3, None, {1: 2, None: 3}])
def test_a_params_file_that_is_no_mapping_of_sections_is_one_message(tmp_path, doc):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(doc))
    loaded, stderr = run_loader(path, ["data"])
    assert loaded is None and stderr.startswith("error: ") and stderr.count("\n") == 1


FOUND = [
    # (section, change, fragments of the one problem line): the defects the fuzzer found
    ("hpo", {"lr": [1e-5, 10**400]}, ["hpo.lr: got [1e-05, 1000", "(410 characters)", "int64"]),
    ("distill", {"alpha": 10**400}, ["distill.alpha: got 1000", "int64"]),  # was OverflowError
    ("prepare", {"n_transfer": 10**30}, ["prepare.n_transfer", "int64"]),
    ("hpo", {"dropout": [0, 5]}, ["hpo.dropout: got [0, 5]", "< 1"]),
    ("teacher", {"prompt": "{"}, ["teacher.prompt: got '{'", "'{{'"]),
    ("teacher", {"prompt": "{text!r}"}, ["teacher.prompt", "{text!r} is not allowed"]),
    ("teacher", {"prompt": "Review:"}, ["teacher.prompt", "no {text} placeholder"]),
    ("teacher", {"device": "cuda:²"}, ["teacher.device: got 'cuda:²'", "cuda:<index>"]),
    ("teacher", {"model": " "}, ["teacher.model: got ' '", "must not be empty"]),
    ("data", {"label_names": ["", " "]}, ["data.label_names: got ['', ' ']", "non-blank"]),
    ("data", {"text_column": ""}, ["data.text_column: got ''", "must not be empty"]),
    ("space", {"title": ""}, ["space.title: got ''"]),
    ("space", {"variant": "\t"}, ["space.variant: got '\\t'", "'recommended'"]),
    ("benchmark", {"threads": -2}, ["benchmark.threads: got -2", ">= 0"]),
    ("distill", {"attention_weight": -1}, ["distill.attention_weight: got -1.0", ">= 0"]),
    ("nas", {"latency_penalty": -1}, ["nas.latency_penalty: got -1.0", ">= 0"]),
    ("nas", {"search_space": {"num_attention_heads": [7], "head_size": None}},
     ["nas.search_space.num_attention_heads: got [7]", "none divides a hidden_size"]),
]


@pytest.mark.parametrize(("name", "change", "fragments"), FOUND,
                         ids=[f"{n}-{next(iter(c))}" for n, c, _ in FOUND])
def test_defects_found_by_fuzzing_stop_with_one_message(tmp_path, name, change, fragments):
    path = tmp_path / "params.yaml"
    path.write_text(dump({**REAL, name: {**REAL[name], **change}}))
    loaded, stderr = run_loader(path, [name])
    assert loaded is None
    (problem,) = [line for line in stderr.splitlines() if line.startswith("  - ")]
    assert_one_user_error(stderr, name)
    for fragment in fragments:
        assert fragment in problem, (fragment, problem)


@pytest.mark.parametrize(("text", "fragment"), [
    ("{1: 2, null: 3}", "no 'data' section (sections: 1, None)"),  # was TypeError
    ("data:\n  seed: 2024-13-45\n", "cannot be read (month must be in 1..12)"),  # was ValueError
    ("data:\n  seed: 1" + "0" * 5000 + "\n", "cannot be read (Exceeds the limit"),
])
def test_params_files_yaml_cannot_build_stop_with_one_message(tmp_path, text, fragment):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    loaded, stderr = run_loader(path, ["data"])
    assert loaded is None and stderr.count("\n") == 1 and fragment in stderr, stderr
