"""A Gradio page that classifies a sentence with one or more models, side by side.

Two users: ``python -m distillery.serve.demo`` (the teacher and the chosen students of the current
pipeline run) and the Hugging Face Space that the ``space`` stage writes, where this file is
copied as ``app.py`` next to ``model.onnx`` and ``tokenizer.json``. That is why it imports only
numpy, onnxruntime, tokenizers and gradio (no torch, no distillery): the Space installs nothing
else. Anything that can answer :class:`Classifier`'s ``predict`` can be shown.

Per model the page shows the predicted label with its probability and the measured time of
that call (the model alone, tokenisation excluded), and the class probabilities as bars. Bad
input ends as a message on the page, never a stack trace: empty text, text longer than the
model reads (truncated, and the page says so), text over the server's cap (refused before any
tokenisation), a model that failed to load.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage pings
# Gradio's queue summarises its last GRADIO_ANALYTICS_MAX_EVENTS (10,000) events in a pandas
# DataFrame after EVERY event (for its /monitoring page), a cost that grows with the events
# served; summarising the last 1,000 every 1,000 events keeps it flat (see
# docs/demo-and-space.md, load test).
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")

logger = logging.getLogger(__name__)

TOP_CLASSES = 5
"""Bars shown per model (all classes when there are at most this many)."""

MAX_INPUT_CHARS = 10_000
"""Default cap on one request's characters (both sentences together), checked before any
tokenisation (``space.max_input_chars`` sets it). The models read at most ``max_length``
tokens (512 tokens are about 2,500 characters of English), so the cap only refuses text whose
end no model would read; without it a 1 MB paste costs about 0.5 s of tokenising per model
while every other visitor waits in the same queue."""


@dataclass
class Prediction:
    """One model's answer for one input."""

    label: str
    probs: dict[str, float]
    ms: float
    """Wall time of the model call in milliseconds (tokenisation excluded)."""
    tokens: int
    """Tokens of the input before truncation (special tokens included)."""
    truncated: bool


class Classifier(Protocol):
    """What the page needs from a model."""

    name: str
    description: str
    labels: list[str]
    max_length: int
    sentence_pair: bool

    def predict(self, text: str, pair: str | None = None) -> Prediction: ...


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed stably."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def prediction(logits: np.ndarray, labels: Sequence[str], ms: float, tokens: int,
               max_length: int) -> Prediction:
    """A :class:`Prediction` from one row of logits ``(C,)``."""
    probs = softmax(np.asarray(logits, dtype=np.float64).reshape(-1))
    best = int(probs.argmax())
    return Prediction(labels[best], {n: float(p) for n, p in zip(labels, probs, strict=True)},
                      ms, tokens, tokens > max_length)


class Encoder:
    """Text (and pair) -> ``(1, T)`` int64 feeds of a session's ``inputs``, tokenised with the
    ``tokenizers`` library as the pipeline does (special tokens added, longest-first truncation
    to ``max_length``), and the token count before truncation (special tokens included).

    Each text is tokenised once: the untruncated tokens are counted, then cut and given their
    special tokens by ``post_process`` (no second pass over the text). Its two tokenizers are
    its own copies, configured once here and never changed, so one encoder can serve
    concurrent calls.
    """

    def __init__(self, tokenizer: str | Path | Tokenizer, max_length: int,
                 inputs: Sequence[str], direction: str = "right") -> None:
        self.full = _copy(tokenizer)  # tokenises: no truncation, no padding, ever
        self.full.no_padding()
        self.full.no_truncation()
        self.truncating = _copy(tokenizer)  # only post-processes: truncation + special tokens
        self.truncating.no_padding()
        self.truncating.enable_truncation(max_length, strategy="longest_first",
                                          direction=direction)
        self.inputs = list(inputs)
        self.max_length = max_length

    def __call__(self, text: str, pair: str | None = None) -> tuple[dict[str, np.ndarray], int]:
        first = self.full.encode(text, add_special_tokens=False)
        second = None if pair is None else self.full.encode(pair, add_special_tokens=False)
        tokens = (len(first.ids) + (0 if second is None else len(second.ids))
                  + self.full.num_special_tokens_to_add(second is not None))
        enc = self.truncating.post_process(first, second, add_special_tokens=True)
        arrays = {"input_ids": enc.ids, "attention_mask": enc.attention_mask,
                  "token_type_ids": enc.type_ids}
        feeds = {k: np.asarray([arrays[k]], dtype=np.int64) for k in self.inputs}
        return feeds, tokens


def _copy(tokenizer: str | Path | Tokenizer) -> Tokenizer:
    """A private ``tokenizers.Tokenizer``: read from a ``tokenizer.json`` file, or a copy of
    ``tokenizer`` (whose settings its owner may change per call, as ``transformers`` does)."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, (str, Path)):
        return Tokenizer.from_file(str(tokenizer))
    return Tokenizer.from_str(tokenizer.to_str())


class OnnxClassifier:
    """An exported Distillery model: an ONNX file with its labels, input names, ``max_length``
    and ``sentence_pair`` in the metadata, and the ``tokenizer.json`` it was trained with.

    Tokenises with the ``tokenizers`` library exactly as the pipeline does (special tokens
    added, longest-first truncation to ``max_length``), so the answer equals the pipeline's.
    """

    def __init__(self, model: str | Path, tokenizer: str | Path, name: str | None = None,
                 threads: int = 0) -> None:
        import onnxruntime as ort

        for path, what in ((model, "model"), (tokenizer, "tokenizer")):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{what} file {path} not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # No busy-waiting between calls: ONNX Runtime's threads otherwise spin after each run,
        # burning the CPU the web server needs (measured on 2 cores: 12.0 -> 5.6 ms of server
        # CPU per request, 12.2 -> 8.4 ms latency for one client; the same throughput at 32).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model), options,
                                            providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in ("labels", "max_length") if k not in meta]
        if missing:
            raise ValueError(f"{model} lacks metadata {missing}: export it with `dvc repro export`")
        self.labels: list[str] = json.loads(meta["labels"])
        self.max_length = int(meta["max_length"])
        self.sentence_pair = meta.get("sentence_pair") == "true"
        self.name = name or meta.get("variant", Path(model).stem)
        size_mb = Path(model).stat().st_size / 1e6
        self.description = (f"ONNX Runtime CPU · {meta.get('precision', '?')} · "
                            f"{size_mb:.1f} MB")
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer_path = Path(tokenizer)
        self.encode = Encoder(tokenizer, self.max_length, self.inputs)
        warm_up(self)

    def predict(self, text: str, pair: str | None = None) -> Prediction:
        feeds, tokens = self.encode(text, pair)
        start = time.perf_counter()
        (logits,) = self.session.run(["logits"], feeds)  # (1, C)
        ms = (time.perf_counter() - start) * 1e3
        return prediction(logits[0], self.labels, ms, tokens, self.max_length)


WARM_UP = "a warm up sentence of about the length people type , so that the first call is not slow"


def warm_up(model: Classifier, calls: int = 3) -> None:
    """A few calls before the page shows times: the first calls of a session pay for memory
    planning and kernel selection (measured: a PyTorch teacher's first call 2-4x its usual)."""
    for _ in range(calls):
        model.predict(WARM_UP)


def refusal(models: Sequence[Classifier], text: str | None, pair: str | None = None,
            max_chars: int = MAX_INPUT_CHARS) -> str:
    """The message that refuses an input over ``max_chars`` characters (both sentences
    together), or "" when it fits; it reads only the lengths."""
    size = len(text or "") + len(pair or "")
    if size <= max_chars:
        return ""
    read = max(m.max_length for m in models)
    return (f"The input is {size:,} characters long; this page takes at most {max_chars:,} "
            f"(the models read only the first {read} tokens): shorten it.")


def classify(models: Sequence[Classifier], text: str | None, pair: str | None = None,
             max_chars: int = MAX_INPUT_CHARS) -> tuple[str, list[Prediction | str]]:
    """Run every model on one input.

    Args:
        models: the models to run.
        text: the (first) sentence.
        pair: the second sentence (sentence-pair tasks), else None.
        max_chars: longest input accepted (both sentences together); longer ones are refused
            before any tokenisation.

    Returns:
        A status line for the page ("" when all is well) and, per model, its
        :class:`Prediction` or the message of what went wrong.
    """
    line = refusal(models, text, pair, max_chars)
    if line:
        return line, ["" for _ in models]
    text = (text or "").strip()
    pair = (pair or "").strip() if pair is not None else None
    needs_pair = any(m.sentence_pair for m in models)
    if not text:
        return "Type a sentence first.", ["" for _ in models]
    if needs_pair and not pair:
        return "This task classifies sentence pairs: type the second sentence too.", [
            "" for _ in models]
    answers: list[Prediction | str] = []
    cut: dict[int, list[str]] = {}  # max_length -> models that truncated this input
    tokens = 0
    for m in models:
        try:
            p = m.predict(text, pair if m.sentence_pair else None)
        except Exception as e:  # shown on the page instead of a stack trace
            logger.exception("%s failed", m.name)
            answers.append(f"{m.name} failed: {e}")
            continue
        answers.append(p)
        if p.truncated:
            cut.setdefault(m.max_length, []).append(m.name)
            tokens = max(tokens, p.tokens)
    notes = [f"The input is {tokens} tokens long; "
             f"{'the models read' if len(names) == len(models) else ', '.join(names) + ' read'}"
             f" only the first {n} (the rest is truncated)." for n, names in cut.items()]
    return " ".join(notes), answers


def _show(answer: Prediction | str) -> tuple[str, dict[str, float] | None]:
    if isinstance(answer, str):
        return (f"⚠️ {answer}" if answer else ""), None
    return (f"**{answer.label}** · {answer.probs[answer.label]:.1%} · "
            f"{answer.ms:.2f} ms"), answer.probs


def build_ui(models: Sequence[Classifier], examples: Sequence[dict] = (),
             title: str = "Distillery", intro: str = "", problems: Sequence[str] = (),
             max_chars: int = MAX_INPUT_CHARS, workers: int = 1):
    """The Gradio page: a text box (two for sentence pairs), one column per model.

    Args:
        models: what to compare (at least one).
        examples: ``{"text", "text_pair"?, "note"?}`` rows offered one click away.
        title: page title.
        intro: Markdown under the title.
        problems: messages shown at the top (e.g. a model file that is missing).
        max_chars: longest input the server accepts (see :data:`MAX_INPUT_CHARS`).
        workers: model calls run at once (threads; the models must be safe to share, as
            :class:`Encoder` and ONNX Runtime sessions are).
    """
    import gradio as gr

    pair_task = any(m.sentence_pair for m in models)
    with gr.Blocks(title=title, analytics_enabled=False) as ui:
        gr.Markdown(f"# {title}\n{intro}")
        if problems:
            gr.Markdown("\n".join(f"⚠️ {p}" for p in problems), elem_id="problems")
        text = gr.Textbox(label="Text" if not pair_task else "First sentence", lines=2,
                          elem_id="text", placeholder="Type a sentence…")
        inputs = [text]
        if pair_task:
            inputs.append(gr.Textbox(label="Second sentence", lines=2, elem_id="text-pair"))
        button = gr.Button("Classify", variant="primary", elem_id="classify")
        status = gr.Markdown(elem_id="status")
        outputs = [status]
        with gr.Row():
            for i, m in enumerate(models):
                with gr.Column():
                    gr.Markdown(f"### {m.name}\n{m.description}", elem_id=f"name-{i}")
                    outputs.append(gr.Markdown(elem_id=f"result-{i}"))
                    outputs.append(gr.Label(label="class probabilities", elem_id=f"probs-{i}",
                                            num_top_classes=min(TOP_CLASSES, len(m.labels))))

        async def run(*values: str):
            # Runs on the server's event loop, outside Gradio's queue (no concurrency limit):
            # an input over the cap is refused at once, however many calls wait for the
            # models; the models run in `workers` threads, in the order the calls came.
            line = refusal(models, *values, max_chars=max_chars)
            answers: list[Prediction | str] = ["" for _ in models]
            if not line:
                call = functools.partial(classify, models, *values, max_chars=max_chars)
                line, answers = await asyncio.get_running_loop().run_in_executor(pool, call)
            return [line, *(shown for a in answers for shown in _show(a))]

        pool = ThreadPoolExecutor(workers, thread_name_prefix="classify")
        for event, api in ((button.click, "classify"), (text.submit, False)):
            event(run, inputs, outputs, api_name=api, concurrency_limit=None)
        if examples:
            note = gr.Textbox(label="About this example", interactive=False, elem_id="note")
            rows = [[e["text"]] + ([e.get("text_pair", "")] if pair_task else [])
                    + [e.get("note", "")] for e in examples]
            gr.Examples(rows, [*inputs, note], label="Examples from the eval split (click one, "
                        "then Classify)")
    return ui


def read_examples(path: str | Path) -> list[dict]:
    """``{"text", "text_pair"?, "note"?}`` rows from a jsonl file (none when it is absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def main(argv: list[str] | None = None) -> None:
    """The Space: serve ``model.onnx`` and ``tokenizer.json`` from this file's folder."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    card = here / "space.json"
    info = json.loads(card.read_text()) if card.is_file() else {}
    problems, models = [], []
    try:
        models.append(OnnxClassifier(here / "model.onnx", here / "tokenizer.json",
                                     name=info.get("variant")))
    except (FileNotFoundError, ValueError) as e:
        problems.append(f"{e}. Rebuild this folder with `dvc repro space`.")
    if not models:
        import gradio as gr

        with gr.Blocks(title="Distillery", analytics_enabled=False) as ui:
            gr.Markdown("# Distillery\n" + "\n".join(f"⚠️ {p}" for p in problems),
                        elem_id="problems")
    else:
        ui = build_ui(models, read_examples(here / "examples.jsonl"),
                      title=info.get("title", "Distillery"), intro=info.get("intro", ""),
                      max_chars=int(info.get("max_input_chars", MAX_INPUT_CHARS)))
    ui.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    sys.exit(main())
