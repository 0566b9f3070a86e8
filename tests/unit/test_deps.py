"""Every DVC stage's code deps are exactly its script and the project modules it imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillery.core import deps

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("dvc_yaml", ["dvc.yaml", "studies/dvc.yaml"])
def test_code_deps_of_every_stage_are_exact(dvc_yaml):
    problems = deps.check(ROOT / dvc_yaml, ROOT / "src")
    assert not problems, ("run `python -m distillery.core.deps --write dvc.yaml "
                          "studies/dvc.yaml`:\n" + "\n".join(problems))


def test_a_stage_depends_only_on_the_params_sections_it_reads():
    wanted = deps.expected_deps(ROOT / "dvc.yaml", ROOT / "src")
    holders = {s for s, files in wanted.items() if "src/distillery/config/compress.py" in files}
    assert holders == {"compress"}
    for stage in ("hpo", "label", "distill"):
        assert not any(f.startswith("src/distillery/config/") and f.endswith(
            ("compress.py", "export.py", "benchmark.py", "report.py")) for f in wanted[stage])
    # nas times candidates as the pipeline ships them: export.int8_recipe, benchmark.threads
    assert not any(f.startswith("src/distillery/config/") and f.endswith(
        ("compress.py", "report.py")) for f in wanted["nas"])


@pytest.fixture
def tree(tmp_path) -> Path:
    """A toy project: ``stages/s.py`` imports ``distillery.a`` (which imports ``b`` inside a
    function and ``c`` for type checking only) and the package ``distillery.pkg``."""
    src = tmp_path / "src" / "distillery"
    (src / "pkg").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from distillery import c\n"
                              "def f():\n    from distillery.b import g\n")
    (src / "b.py").write_text("def g(): ...\n")
    (src / "c.py").write_text("")
    (src / "pkg" / "__init__.py").write_text("from distillery.pkg import one\n")
    (src / "pkg" / "one.py").write_text("")
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "s.py").write_text("import distillery.a\n"
                                              "from distillery.pkg import one\n")
    return tmp_path


def _dvc_yaml(tree: Path, code: list[str]) -> Path:
    lines = "".join(f"      - {d}\n" for d in code)
    path = tree / "dvc.yaml"
    path.write_text(f"stages:\n  s:\n    cmd: python stages/s.py --x 1\n    deps:\n{lines}"
                    "      - data/in\n")
    return path


def test_closure_follows_lazy_imports_and_packages_but_not_type_checking(tree):
    files = deps.import_closure(tree / "stages" / "s.py", tree / "src")
    names = {str(f.relative_to(tree)) for f in files}
    assert names == {"stages/s.py", "src/distillery/__init__.py", "src/distillery/a.py",
                     "src/distillery/b.py", "src/distillery/pkg/__init__.py",
                     "src/distillery/pkg/one.py"}
    assert deps.expected_deps(_dvc_yaml(tree, []), tree / "src")["s"] == [
        "stages/s.py", "src/distillery/__init__.py", "src/distillery/a.py",
        "src/distillery/b.py", "src/distillery/pkg"]  # a fully imported package: its folder


def test_check_names_missing_and_unused_code_deps_and_rewrite_fixes_them(tree):
    path = _dvc_yaml(tree, ["stages/s.py", "src/distillery/a.py", "src/distillery/c.py"])
    problems = deps.check(path, tree / "src")
    assert "s: imports src/distillery/b.py, which no dep covers" in problems
    assert any("src/distillery/c.py, which the stage never imports" in p for p in problems)
    path.write_text(deps.rewrite(path, tree / "src"))
    assert deps.check(path, tree / "src") == []
    assert "      - data/in\n" in path.read_text()  # data deps are kept
