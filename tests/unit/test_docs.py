"""The README and docs/ link only to files and headings that exist, name only modules and
source files that exist, and the README stays a front page (at most 200 lines)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MODULE = re.compile(r"(?<![\w/.])distillery(?:\.\w+)+")
SOURCE = re.compile(r"(?<![\w.])(?:src/distillery|stages|scripts|studies/stages)/[\w/.]*\w")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of ``page``: lower case, punctuation dropped, spaces to -."""
    out = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_internal_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_params_reference_is_generated_from_the_config():
    from distillery.config import reference

    assert (ROOT / "docs" / "params-reference.md").read_text() == reference.markdown(), \
        "regenerate: python -m distillery.config.reference > docs/params-reference.md"


def test_params_reference_covers_every_key_of_params_yaml():
    import yaml

    text = (ROOT / "docs" / "params-reference.md").read_text()
    for section, keys in yaml.safe_load((ROOT / "params.yaml").read_text()).items():
        assert f"## `{section}`" in text
        for key in keys:
            assert f"| `{key}` |" in text, f"{section}.{key}"


def _resolves(dotted: str) -> bool:
    """``dotted`` is an importable module, or an attribute of one."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for name in parts[k:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_named_modules_and_source_files_exist(page):
    """After code moves, a page that still names ``distillery.hpo`` or ``src/distillery/x.py``
    fails here."""
    text = page.read_text()
    missing = [m for m in sorted(set(MODULE.findall(text))) if not _resolves(m)]
    missing += [p for p in sorted(set(SOURCE.findall(text))) if not (ROOT / p).exists()]
    assert not missing, f"{page.name}: {missing}"
