"""A profile (a partial ``params.yaml`` in ``profiles/``) as ``dvc exp run`` arguments.

``python -m distillery.config.profile profiles/hwu64.yaml`` prints ``-S 'section.key=value' ...``
for every leaf of the file (nested mappings become dotted keys, lists stay one value), so
``dvc exp run -n hwu64 $(python -m distillery.config.profile profiles/hwu64.yaml)`` runs the study
with it; the Makefile's ``study-<profile>`` targets do exactly that. Every section and key is
checked against the config before anything runs.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _yaml_value(value: Any) -> str:
    """``value`` as ``dvc exp run -S`` parses it (YAML flow style)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def arguments(path: str | Path) -> list[str]:
    """The ``-S`` arguments of the profile at ``path``, after checking it against the config.

    Raises:
        UserError: the file is not a mapping of sections, or a section rejects a key or value.
    """
    from distillery.config.base import parse_section
    from distillery.config.reference import SECTIONS, section_class
    from distillery.core.io import UserError

    tree = yaml.safe_load(Path(path).read_text())
    if not isinstance(tree, dict):
        raise UserError(f"{path}: expected a mapping of params.yaml sections")
    for section, raw in tree.items():
        if section not in SECTIONS:
            raise UserError(f"{path}: unknown section {section!r}; sections: "
                            + ", ".join(SECTIONS))
        parse_section(section_class(section), raw, section)
    return [a for k, v in flatten(tree).items() for a in ("-S", f"{k}={_yaml_value(v)}")]


def main() -> None:
    from distillery.core.io import run_main

    def run() -> None:
        print(shlex.join(arguments(sys.argv[1])))

    run_main(run)


if __name__ == "__main__":
    main()
