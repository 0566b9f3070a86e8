"""The README and docs/ link only to files and headings that exist, and the README stays a
front page (at most 200 lines)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


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
