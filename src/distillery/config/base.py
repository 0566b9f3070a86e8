"""Loading and validating a section of ``params.yaml`` into its dataclass.

Every stage loads its sections through :func:`load_section`. Unknown keys, wrong types and
out-of-range values are all collected and reported in one ``ValueError`` that names the
``params.yaml`` key, the value given and what is allowed, before any compute starts.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
import urllib.parse
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from distillery.core.io import UserError

T = TypeVar("T")


# --------------------------------------------------------------------------- checking


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _type_ok(k, key_t) and _type_ok(v, val_t) for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return isinstance(value, hint)


SEED_RANGE = (0, 2**32 - 1)
"""Seeds numpy, torch and Python all accept."""
INT_LIMIT = 2**63 - 1
"""Largest integer magnitude numpy and torch hold (int64): a bigger one fails mid-run."""


def _non_finite(value: Any) -> bool:
    """Whether ``value`` is, or holds, a NaN or infinite float (YAML's ``.nan``, ``.inf``)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def _too_big(value: Any) -> bool:
    """Whether ``value`` is, or holds, an integer beyond :data:`INT_LIMIT` (``10**30``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > INT_LIMIT
    if isinstance(value, list):
        return any(_too_big(v) for v in value)
    if isinstance(value, dict):
        return any(_too_big(v) for v in value.values())
    return False


def show(value: Any) -> str:
    """``repr(value)``, shortened when long (a pasted paragraph, a 400-digit number)."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4,300 digits
        return "a number too long to print"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _seed_problem(name: str, value: Any) -> str | None:
    """A seed key (``seed``, ``*_seed``, ``seeds``) outside :data:`SEED_RANGE`."""
    if not (name == "seed" or name.endswith("_seed") or name == "seeds"):
        return None
    values = value if isinstance(value, list) else [value]
    lo, hi = SEED_RANGE
    if all(isinstance(v, int) and lo <= v <= hi for v in values):
        return None
    return f"got {show(value)}, expected seeds in [{lo}, {hi}]"


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint):
        return f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(hint))}"
    return getattr(hint, "__name__", str(hint))


def _build(cls: type[T], raw: Any, prefix: str, problems: list[str]) -> T | None:
    if not isinstance(raw, dict):
        problems.append(f"{prefix}: got {show(raw)}, expected a mapping")
        return None
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            where = (f"{prefix}.{key}: unknown key" if re.fullmatch(r"\w+", str(key), re.ASCII)
                     else f"{prefix}: unknown key {show(key)}")  # '', 'a b', None: quoted
            problems.append(f"{where} (value {show(raw[key])}); allowed keys: "
                            + ", ".join(sorted(names)))
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value, hint = raw[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _build(hint, value, f"{prefix}.{f.name}", problems)
            if value is None:
                continue
        elif not _type_ok(value, hint):
            problems.append(f"{prefix}.{f.name}: got {show(value)}, expected {_describe(hint)}")
            continue
        elif _non_finite(value):
            problems.append(f"{prefix}.{f.name}: got {show(value)}, expected finite numbers "
                            "(no .nan or .inf)")
            continue
        elif _too_big(value):
            problems.append(f"{prefix}.{f.name}: got {show(value)}, expected numbers of at most "
                            f"{INT_LIMIT:,} in size (int64)")
            continue
        elif (seed := _seed_problem(f.name, value)) is not None:
            problems.append(f"{prefix}.{f.name}: {seed}")
            continue
        if hint is float and isinstance(value, int):
            value = float(value)
        kwargs[f.name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        # Fields that already failed hold their defaults: skip what check() says of them.
        bad = {p.split(":")[0] for p in problems}
        problems.extend(
            f"{prefix}.{p}" for p in check() if f"{prefix}.{p.split(':')[0]}" not in bad
        )
    return obj


def parse_section(cls: type[T], raw: Any, name: str) -> T:
    """Build ``cls`` from the mapping ``raw`` (the ``name`` section), validating everything.

    Raises:
        ValueError: listing every problem found, one per line.
    """
    problems: list[str] = []
    obj = _build(cls, raw if raw is not None else {}, name, problems)
    if problems:
        raise UserError(
            f"invalid params.yaml section '{name}':\n  - " + "\n  - ".join(problems)
        )
    assert obj is not None
    return obj


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_section(path: str | Path, name: str, cls: type[T]) -> T:
    """Load section ``name`` of the params file at ``path`` into the dataclass ``cls``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file {path} not found")
    try:  # libyaml's parser when present: the same documents, parsed ~10x faster
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        if isinstance(e, yaml.reader.ReaderError):  # a control character, e.g. a NUL byte
            at = f" (character {e.character!r} at position {e.position})"
        what = getattr(e, "problem", None) or getattr(e, "reason", None) or str(e)
        raise UserError(f"params file {path} is not valid YAML{at}: "
                        + " ".join(str(what).split())) from None
    except UnicodeDecodeError as e:
        raise UserError(f"params file {path} is not UTF-8 text (byte {e.start}): save it as "
                        "UTF-8") from None
    except ValueError as e:  # YAML syntax Python cannot build: 2024-13-45, a 5,000-digit number
        raise UserError(f"params file {path} holds a value that cannot be read "
                        f"({str(e).split(';')[0]}): fix it, or quote it if it is text") from None
    if not isinstance(data, dict):
        raise UserError(f"params file {path}: expected a mapping of sections (data:, task:, "
                        f"...) at the top level, got a {type(data).__name__}")
    if name not in data:
        raise UserError(f"params.yaml has no '{name}' section (sections: "
                        f"{', '.join(map(str, data))})")
    return parse_section(cls, data[name], name)


def in_range(name: str, value: float, lo: float, hi: float) -> list[str]:
    if not lo <= value <= hi:
        return [f"{name}: got {value!r}, expected a value in [{lo}, {hi}]"]
    return []


def storage_problem(name: str, value: str | None) -> str | None:
    """An Optuna storage param (``hpo.storage``, ``nas.storage``) that is malformed or holds a
    secret: a URL with a password would reach ``params.yaml``, ``dvc.lock`` and git history, so
    it must come from the environment (``env:NAME``, read at run time)."""
    if value is None:
        return None
    if value.startswith("env:"):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value[4:]):
            return None
        return (f"{name}: got {value!r}, expected env:NAME with NAME an environment variable "
                "name (letters, digits, underscores), e.g. env:DISTILLERY_STORAGE")
    if not value.strip():
        return f"{name}: got {value!r}, expected null, a database URL, a journal path or env:NAME"
    if "://" in value and urllib.parse.urlsplit(value).password is not None:
        parts = urllib.parse.urlsplit(value)
        masked = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
        return (f"{name}: got {masked.geturl()!r}, a URL with a password would be written to "
                "params.yaml, dvc.lock and git history; export the URL in an environment "
                f"variable and set {name}: env:NAME (e.g. export "
                f"DISTILLERY_STORAGE='<the URL>' and {name}: env:DISTILLERY_STORAGE)")
    return None


def positive(obj: Any, *names: str) -> list[str]:
    return [
        f"{n}: got {getattr(obj, n)!r}, expected a positive number"
        for n in names
        if getattr(obj, n) <= 0
    ]
