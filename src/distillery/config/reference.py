"""The params reference, generated from the config modules: every section's keys, types,
defaults and the docstring under each field.

``python -m distillery.config.reference > docs/params-reference.md`` writes it; a test checks
that the committed page equals the generated one.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

SECTIONS = ("data", "task", "teacher", "prepare", "baselines", "hpo", "nas", "distill",
            "compress", "export", "benchmark", "report", "space", "llm")
"""``params.yaml`` sections in pipeline order, each a module of this package."""


def _field_docs(module_file: Path) -> dict[str, dict[str, str]]:
    """``class -> field -> docstring`` from the string right under each annotated field."""
    tree = ast.parse(module_file.read_text())
    out: dict[str, dict[str, str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        docs: dict[str, str] = {}
        body = cls.body
        for i, node in enumerate(body[:-1]):
            nxt = body[i + 1]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                    and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
        out[cls.name] = docs
    return out


def section_class(section: str) -> type:
    """The dataclass of ``params.yaml`` section ``section`` (``hpo`` -> ``HpoParams``)."""
    module = importlib.import_module(f"distillery.config.{section}")
    return next(c for n, c in vars(module).items()
                if n.lower() == f"{section}params" and dataclasses.is_dataclass(c))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The whole reference page."""
    lines = ["# Params reference", "",
             "Generated from `src/distillery/config/` by `python -m distillery.config.reference`"
             " (a test keeps it in sync). Every key of `params.yaml`, its type, its default and",
             "what it does; unknown keys and bad values stop a stage before any compute.", ""]
    for section in SECTIONS:
        module = importlib.import_module(f"distillery.config.{section}")
        docs = _field_docs(Path(module.__file__))
        classes = [c for c in vars(module).values() if dataclasses.is_dataclass(c)
                   and c.__module__ == module.__name__]
        top = section_class(section)
        lines += [f"## `{section}`", "", " ".join((top.__doc__ or "").split()), ""]
        for cls in [top, *[c for c in classes if c is not top]]:
            if cls is not top:
                lines += [f"`{section}.search_space` ({cls.__name__}): "
                          + " ".join((cls.__doc__ or "").split()), ""]
            lines += ["| key | type | default | what it does |", "|---|---|---|---|"]
            for f in dataclasses.fields(cls):
                default = f.default if f.default is not dataclasses.MISSING else (
                    f.default_factory() if f.default_factory is not dataclasses.MISSING else "")
                if dataclasses.is_dataclass(default):
                    default = "see below"
                lines.append(f"| `{f.name}` | `{_cell(str(f.type))}` | `{_cell(repr(default))}` "
                             f"| {_cell(docs.get(cls.__name__, {}).get(f.name, ''))} |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
