"""The code a DVC stage runs: its script and every project module it imports, transitively.

A stage's ``deps`` in ``dvc.yaml`` must cover exactly that code, or an edit to an imported
module leaves ``dvc status`` clean and the committed metrics stale (and a dependency on code the
stage never runs reruns it for nothing). :func:`import_closure` follows every ``import`` and
``from ... import`` of the ``distillery`` package found anywhere in a file (imports inside
functions included: they run when the stage calls them; those under ``if TYPE_CHECKING:`` never
run and do not count), counting each package's
``__init__.py`` that an import executes. :func:`check` compares a ``dvc.yaml`` with it; run
``python -m distillery.core.deps [dvc.yaml ...]`` to print every stage's exact code deps.
"""

from __future__ import annotations

import ast
import os
import shlex
import sys
from pathlib import Path

import yaml

PACKAGE = "distillery"


def _module_file(src: Path, module: str) -> Path | None:
    """The file of dotted ``module`` under ``src`` (a package's ``__init__.py``), or None."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    """Dotted names of the ``distillery`` modules ``path`` imports (``from a import b``: ``a.b``
    too, in case ``b`` is a submodule)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for stmt in block.body for n in ast.walk(stmt)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:  # never runs
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == PACKAGE:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def import_closure(script: Path, src: Path) -> set[Path]:
    """``script`` and every project file it imports, transitively (paths as given)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(path):
            parts = module.split(".")
            for k in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__
                found = _module_file(src, ".".join(parts[:k]))
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def stage_scripts(dvc_yaml: Path) -> dict[str, Path]:
    """``stage -> script`` for every stage of ``dvc_yaml`` whose command is ``python <file>``."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        words = shlex.split(stage["cmd"])
        if len(words) > 1 and words[0] == "python" and words[1].endswith(".py"):
            out[name] = dvc_yaml.parent / words[1]
    return out


def expected_deps(dvc_yaml: Path, src: Path) -> dict[str, list[str]]:
    """Every stage's exact code deps, as paths relative to the ``dvc.yaml`` folder: its script,
    then the project files it imports, a package folder standing for all of its files when
    the stage imports every one of them."""
    root = dvc_yaml.parent.resolve()
    src = src.resolve()
    out = {}
    for name, script in stage_scripts(dvc_yaml).items():
        script = script.resolve()
        files = import_closure(script, src) - {script}
        out[name] = [_relative(script, root)] + sorted(_relative(f, root)
                                                       for f in _collapse(files, src))
    return out


def _collapse(files: set[Path], src: Path) -> set[Path]:
    """``files`` with every package folder (below the top package) whose ``.py`` files are all
    in ``files`` replaced by the folder."""
    out = set(files)
    top = src / PACKAGE
    for folder in sorted({f.parent for f in files if f.parent != top}, key=lambda p: len(p.parts)):
        inside = set(folder.rglob("*.py"))
        if inside and inside <= files and not any(folder.is_relative_to(o) for o in out
                                                  if o.is_dir()):
            out = (out - inside) | {folder}
    return out


def _relative(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def check(dvc_yaml: Path, src: Path) -> list[str]:
    """Problems with the code deps of ``dvc_yaml``: an imported file no dep covers, a code dep
    (under ``src`` or a stage script) the stage never imports, a folder dep holding a file the
    stage never imports."""
    root = dvc_yaml.parent.resolve()
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    src = src.resolve()
    problems = []
    for name, script in stage_scripts(dvc_yaml).items():
        wanted_abs = import_closure(script.resolve(), src)
        deps = [d if isinstance(d, str) else next(iter(d)) for d in stages[name].get("deps", [])]
        code = [(root / d).resolve() for d in deps]
        code = [c for c in code if c.is_relative_to(src) or c.suffix == ".py"]
        for w in sorted(wanted_abs):
            if not any(w == c or w.is_relative_to(c) for c in code):
                problems.append(f"{name}: imports {_relative(w, root)}, which no dep covers")
        for c in code:
            inside = {f for f in c.rglob("*.py")} if c.is_dir() else {c}
            for unused in sorted(inside - wanted_abs):
                problems.append(f"{name}: dep {_relative(c, root)} holds "
                                f"{_relative(unused, root)}, which the stage never imports")
    return problems


def rewrite(dvc_yaml: Path, src: Path) -> str:
    """The text of ``dvc_yaml`` with every stage's code deps replaced by
    :func:`expected_deps` (other deps, comments and layout kept)."""
    wanted = expected_deps(dvc_yaml, src)
    root, src = dvc_yaml.parent.resolve(), src.resolve()
    out: list[str] = []
    stage, in_deps = None, False
    for line in dvc_yaml.read_text().splitlines():
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("   ") and stripped.endswith(":"):
            stage, in_deps = stripped[:-1], False
        if in_deps and stripped.startswith("- "):
            path = (root / stripped[2:].rstrip(":")).resolve()
            if path.is_relative_to(src) or path.suffix == ".py":
                continue  # a code dep: replaced below
            out.append(line)
            continue
        in_deps = stripped == "deps:" and stage in wanted
        out.append(line)
        if in_deps:
            indent = line[:len(line) - len(line.lstrip())] + "  "
            out += [f"{indent}- {d}" for d in wanted[stage]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    """``python -m distillery.core.deps [--write] [dvc.yaml ...]``: print the problems of each
    file's code deps (exit 1 if any), or rewrite them in place with ``--write``."""
    args = list(argv if argv is not None else sys.argv[1:])
    write = "--write" in args
    files = [Path(a) for a in args if a != "--write"] or [Path("dvc.yaml")]
    src = Path(__file__).resolve().parents[2]
    problems = []
    for dvc_yaml in files:
        if write:
            dvc_yaml.write_text(rewrite(dvc_yaml, src))
        problems += [f"{dvc_yaml}: {p}" for p in check(dvc_yaml, src)]
    print("\n".join(problems) or "code deps are exact")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
