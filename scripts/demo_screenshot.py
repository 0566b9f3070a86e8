"""Screenshot of ``python -m distillery.serve.demo`` on the current run, for the README.

Starts the demo on the pipeline's models, types a sentence into Debian's headless Chromium,
presses Classify and saves the page: ``python scripts/demo_screenshot.py reports/demo.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil

from playwright.sync_api import expect, sync_playwright

from distillery.serve import demo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--text", default="a gorgeous , witty , seductive movie .")
    ap.add_argument("--variants", nargs="*", default=None)
    ap.add_argument("--port", type=int, default=7861)
    args = ap.parse_args()
    ui = demo.build(args.variants, demo.Paths(), examples=6)
    ui.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True,
              quiet=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{args.port}/")
            page.locator("#text textarea").fill(args.text)
            page.locator("#classify").click()
            expect(page.locator("#result-0")).to_contain_text("ms", timeout=60_000)
            page.locator("#classify").click()  # show a second call's times: the first is cold
            page.wait_for_timeout(3000)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        ui.close()
    print(f"wrote {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
