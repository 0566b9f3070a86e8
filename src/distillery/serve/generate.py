"""The demo's generation view: the LLM variants of stage ``llm`` (``models/llm``) answer a
prompt, greedily, with the KV cache, and say how fast (time to first token, tokens/s).

Every decoder is loaded on first use and kept; one :class:`~distillery.llm.runtime.OrtLM` serves
concurrent requests (the cache is per call). Input longer than ``max_chars`` is refused before
tokenising, as the classifier view does.
"""

from __future__ import annotations

import threading
from pathlib import Path

from distillery.core.io import UserError

MAX_NEW_TOKENS = 128


class Generator:
    """The decoders of one ``models/llm`` folder and their tokenizer."""

    def __init__(self, folder: str | Path, threads: int = 0) -> None:
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.files = {p.stem: p for p in sorted(self.folder.glob("*.onnx"))}
        if not self.files:
            raise UserError(f"{folder} holds no LLM decoder: run `make study-smollm2` (stage llm "
                            "with a causal-LM teacher)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder / "tokenizer"))
        self.threads = threads
        self._models: dict = {}
        self._lock = threading.Lock()

    def model(self, name: str):
        from distillery.llm.runtime import OrtLM

        if name not in self.files:
            raise UserError(f"unknown LLM variant {name!r}; available: {', '.join(self.files)}")
        with self._lock:
            if name not in self._models:
                self._models[name] = OrtLM(self.files[name], self.threads, name=name)
            return self._models[name]

    def generate(self, name: str, prompt: str, max_new_tokens: int = 64, chat: bool = True,
                 max_chars: int = 10_000) -> tuple[str, str]:
        """``(answer, timing line)``."""
        if len(prompt) > max_chars:
            return "", (f"The prompt is {len(prompt):,} characters long; this page takes at most "
                        f"{max_chars:,}: shorten it.")
        if not prompt.strip():
            return "", "Type a prompt."
        lm = self.model(name)
        with self._lock:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False,
                add_generation_prompt=True) if chat and self.tokenizer.chat_template else prompt
            ids = self.tokenizer.encode(text)
        g = lm.greedy(ids, max(1, min(int(max_new_tokens), MAX_NEW_TOKENS)))
        with self._lock:
            answer = self.tokenizer.decode(g.tokens, skip_special_tokens=True)
        return answer, (f"{len(g.tokens)} tokens; first after {1000 * g.ttft_s:.0f} ms, then "
                        f"{g.decode_tps:.1f} tokens/s ({name}, this machine, one call)")


def build_ui(gen: Generator, max_chars: int = 10_000):
    """A Gradio page: variant, prompt, chat template on/off, new tokens; answer and timing."""
    import gradio as gr

    names = list(gen.files)
    default = next((n for n in names if n.endswith("int4")), names[0])
    with gr.Blocks(title="Distillery: LLM variants", analytics_enabled=False) as ui:
        gr.Markdown("Greedy answers of the causal LM's generation variants (stage `llm`), on "
                    "ONNX Runtime with a KV cache.")
        with gr.Row():
            variant = gr.Dropdown(names, value=default, label="variant")
            tokens = gr.Slider(1, MAX_NEW_TOKENS, value=48, step=1, label="new tokens")
            chat = gr.Checkbox(value=True, label="chat template")
        prompt = gr.Textbox(label="prompt", lines=3)
        go = gr.Button("Generate")
        answer = gr.Textbox(label="answer", lines=6)
        timing = gr.Markdown()
        go.click(lambda v, p, n, c: gen.generate(v, p, n, c, max_chars),
                 [variant, prompt, tokens, chat], [answer, timing])
    return ui
