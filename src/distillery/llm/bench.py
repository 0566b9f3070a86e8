"""The generation benchmark: time to first token, decode tokens per second, peak memory and size
of every variant, at batch 1, as a caller sees it.

Every round runs each variant once on the same prompt (``llm.bench_prompt_tokens`` tokens) for
the same number of new tokens (``llm.bench_new_tokens``, no early stop), through the same greedy
loop (:meth:`distillery.llm.runtime.CausalLM.greedy`); the variants are interleaved round by
round, so a slow spell of the machine hits them all; the median over rounds is kept, and every
speed-up is a ratio of medians from the one run. Peak resident memory is a child process's
peak (``VmHWM``) after it loaded the variant and generated once
(``python -m distillery.llm.bench``): in one process, the variants loaded before would count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from distillery.llm.runtime import CausalLM


def bench_prompt(tokenizer, text: str, n: int) -> list[int]:
    """``n`` tokens of ``text`` (repeated if short): the benchmark's fixed prompt."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise ValueError("empty benchmark text")
    return (ids * (n // len(ids) + 1))[:n]


def run(models: dict[str, CausalLM], prompt: Sequence[int], new_tokens: int, rounds: int
        ) -> dict[str, dict[str, float]]:
    """Median ``ttft_ms`` and ``decode_tps`` (and their spread) per model, interleaved."""
    for lm in models.values():  # warm-up: first-call allocations, thread pools
        lm.greedy(list(prompt), 2, stop_at_eos=False)
    ttft: dict[str, list[float]] = {n: [] for n in models}
    tps: dict[str, list[float]] = {n: [] for n in models}
    for _ in tqdm(range(rounds), desc="generation benchmark", leave=False):
        for name, lm in models.items():
            g = lm.greedy(list(prompt), new_tokens, stop_at_eos=False)
            ttft[name].append(1000 * g.ttft_s)
            tps[name].append(g.decode_tps)
    return {n: {"ttft_ms": statistics.median(ttft[n]), "ttft_ms_min": min(ttft[n]),
                "ttft_ms_max": max(ttft[n]), "decode_tps": statistics.median(tps[n]),
                "decode_tps_min": min(tps[n]), "decode_tps_max": max(tps[n])}
            for n in models}


def peak_rss_mb(args: Sequence[str]) -> float:
    """Peak resident memory (MB) of a child ``python -m distillery.llm.bench ARGS``."""
    out = subprocess.run([sys.executable, "-m", "distillery.llm.bench", *args], check=True,
                         capture_output=True, text=True, env={**os.environ})
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def size_mb(path: str | Path) -> float:
    return Path(path).stat().st_size / 1e6


def main(argv: list[str] | None = None) -> None:
    """Load one variant, generate once, print ``{"peak_rss_mb": ...}``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", help="a decoder file (else --base with --form)")
    ap.add_argument("--base", help="teacher.model, for torch")
    ap.add_argument("--form", help="the classifier form folder (specialised) for torch")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.onnx:
        from distillery.llm.runtime import OrtLM

        lm: CausalLM = OrtLM(a.onnx, a.threads)
    else:
        from distillery.llm import export, models
        from distillery.llm.runtime import TorchLM

        model, tok, _ = models.load_specialised(a.base, a.form)
        lm = TorchLM(model, export.eos_ids(model, tok))
    lm.greedy(list(range(100, 100 + a.prompt_tokens)), a.new_tokens, stop_at_eos=False)
    print(json.dumps({"peak_rss_mb": peak_rss_kb() / 1024}))


def peak_rss_kb() -> float:
    """This process's peak resident memory in KiB: ``VmHWM`` (reset by ``exec``; ``ru_maxrss``
    is not, so a child started by a large parent would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
