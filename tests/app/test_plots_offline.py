"""``dvc plots show`` of the committed default run renders with no network: the page template
(``.dvc/plots/offline.html``, ``scripts/offline_plots.py``) inlines vega, vega-lite and
vega-embed, and every plot draws in Debian's headless Chromium with all requests off the
machine refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_browser import browser  # noqa: F401 (fixture)

PlaywrightTimeout = pytest.importorskip("playwright.sync_api").TimeoutError

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def test_every_plot_of_the_default_run_draws_offline(tmp_path, browser):  # noqa: F811
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", str(tmp_path)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    html = (tmp_path / "index.html").read_text()
    n_plots = html.count("vegaEmbed('#")
    assert "cdn.jsdelivr" not in html and n_plots >= 8
    page = browser.new_page()
    remote = []

    def only_local(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((tmp_path / "index.html").as_uri())
    try:
        page.wait_for_function("document.querySelectorAll('div[id] svg, div[id] canvas')"
                               f".length >= {n_plots}", timeout=30_000)
    except PlaywrightTimeout:  # the assertions below say what is missing
        pass
    drawn = page.evaluate("""() => [...document.querySelectorAll('body > div[id]')]
        .map(d => d.querySelector('svg, canvas') !== null)""")
    page.close()
    assert not errors and not remote, (errors, remote)
    assert drawn and all(drawn), drawn
