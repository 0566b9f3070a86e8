"""Write ``.dvc/plots/offline.html``: the page template of ``dvc plots show`` with vega,
vega-lite and vega-embed inlined, so the page renders with no network.

DVC's own page loads the three libraries from a CDN (blank offline). ``.dvc/config`` points
``plots.html_template`` at this file; the versions are the ones DVC's renderer asks the CDN
for, fetched once from the npm registry with ``npm pack`` (run this script again to refresh).

Usage: ``python scripts/offline_plots.py [--out .dvc/plots/offline.html]``
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}
"""npm package -> version: the ones ``dvc_render.vega.VegaRenderer.SCRIPTS`` names."""

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <title>DVC Plot</title>
    <!-- vega, vega-lite, vega-embed inlined for offline viewing: {versions} -->
{inlined}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def fetch(folder: Path) -> dict[str, str]:
    """``package -> minified build`` of every pinned package, from the npm registry."""
    specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
    subprocess.run(["npm", "pack", "--silent", *specs], cwd=folder, check=True,
                   capture_output=True)
    out = {}
    for name, version in PACKAGES.items():
        with tarfile.open(folder / f"{name}-{version}.tgz") as tar:
            member = tar.extractfile(f"package/build/{name}.min.js")
            assert member is not None, name
            out[name] = member.read().decode()
    return out


def page(builds: dict[str, str]) -> str:
    """The template text: ``{plot_divs}`` and ``{refresh_tag}`` placeholders, no ``{scripts}``
    (DVC would put its CDN tags there)."""
    for name, js in builds.items():
        for bad in ("</script", "{plot_divs}", "{refresh_tag}", "{scripts}"):
            if bad in js:
                raise ValueError(f"{name} holds {bad!r}: it cannot be inlined as is")
    versions = ", ".join(
        f"{n}@{PACKAGES[n]} (sha256 {hashlib.sha256(js.encode()).hexdigest()[:16]})"
        for n, js in builds.items())
    inlined = "\n".join(f"    <script>{js}</script>" for js in builds.values())
    return PAGE.format(versions=versions, inlined=inlined)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".dvc/plots/offline.html")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text = page(fetch(Path(tmp)))
    Path(args.out).write_text(text)
    print(f"wrote {args.out} ({len(text) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
