"""The demo as a person uses it: Debian's headless Chromium types a sentence, presses Classify
and reads the labels, which must equal the pipeline's own predictions. Skips (with the reason)
where Chromium or playwright is not installed; `.ci/run` installs both."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from distillery.data import prepared
from distillery.measure import evaluate
from distillery.modeling.loading import load_tokenizer
from distillery.serve import demo

from .conftest import free_port

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SENTENCE = "the plot is dull and the acting is flat"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def demo_url(tiny_run_dir):
    paths = demo.Paths(tiny_run_dir / "models", tiny_run_dir / "data/prepared",
                       tiny_run_dir / "metrics/report.json", tiny_run_dir / "params.yaml")
    ui = demo.build(["student-onnx-fp32"], paths, examples=4)
    port = free_port()
    ui.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    ui.close()


def pipeline_labels(run: Path, text: str) -> list[str]:
    """What the pipeline's own scoring path predicts for ``text``: teacher (torch), student
    (ONNX Runtime)."""
    import onnxruntime as ort

    from distillery.modeling.loading import load_classifier

    split = prepared.Split([text], [0])
    names = prepared.read_labels(run / "data/prepared/labels.json")
    teacher = load_classifier(str(run / "models/teacher"))
    tok = load_tokenizer(str(run / "models/teacher"))
    t = evaluate.predict_logits(teacher, split, tok, 16)
    session = ort.InferenceSession(str(run / "models/onnx/student.onnx"))
    s = evaluate.onnx_logits(session, split, tok, 16)
    return [names[int(t[0].argmax())], names[int(s[0].argmax())]]


def test_demo_in_chromium(browser, demo_url, tiny_run_dir, artifacts):
    from playwright.sync_api import expect

    teacher, student = pipeline_labels(tiny_run_dir, SENTENCE)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(demo_url)
    page.locator("#text textarea").fill(SENTENCE)
    page.locator("#classify").click()
    expect(page.locator("#result-0")).to_have_text(re.compile(rf"^\s*{teacher} · [\d.]+% · "
                                                              r"[\d.]+ ms\s*$"), timeout=30_000)
    expect(page.locator("#result-1")).to_have_text(re.compile(rf"^\s*{student} · "))
    expect(page.locator("#probs-0")).to_contain_text(teacher)
    page.screenshot(path=artifacts / "demo.png", full_page=True)

    # Too long: truncated, and the page says so.
    page.locator("#text textarea").fill(" ".join(["good"] * 40))
    page.locator("#classify").click()
    expect(page.locator("#status")).to_contain_text("42 tokens long; the models read only the "
                                                    "first 16")
    # A 1 MB paste: refused at once with the reason, no prediction.
    page.locator("#text textarea").fill("the film is good " * 61681)
    page.locator("#classify").click()
    expect(page.locator("#status")).to_contain_text(
        "The input is 1,048,577 characters long; this page takes at most 10,000")
    expect(page.locator("#result-0")).to_have_text(re.compile(r"^\s*$"))
    # Empty: a message, no prediction, no stack trace.
    page.locator("#text textarea").fill("   ")
    page.locator("#classify").click()
    expect(page.locator("#status")).to_contain_text("Type a sentence first.")
    expect(page.locator("#result-0")).to_have_text(re.compile(r"^\s*$"))
    assert "Traceback" not in page.content()
    page.close()


def test_example_is_one_click_away(browser, demo_url):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(demo_url)
    page.get_by_role("row").nth(1).click()  # the first example (row 0 is the table's header)
    expect(page.locator("#text textarea")).not_to_have_value("", timeout=10_000)
    note = re.compile(r"gold \w+ · teacher-torch-fp32: \w+")
    expect(page.locator("#note textarea")).to_have_value(note)
    page.close()
