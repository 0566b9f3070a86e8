"""Stage ``llm``'s outputs: the benchmark added to the figures, the flat metrics, one plot row
per variant, and the Markdown report (figures, the issue's targets, answers side by side)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from distillery.core.io import atomic_path, write_json
from distillery.llm import answers, bench
from distillery.lmeval.perplexity import reference_documents

logger = logging.getLogger(__name__)

COLUMNS = ("size_mb", "ttft_ms", "decode_tps", "decode_speedup", "peak_rss_mb", "accuracy",
           "agreement", "greedy_match_label", "greedy_match_open", "word_perplexity",
           "lm_eval_acc", "lm_eval_max_ll_diff", "answer_failure_rate", "answer_accuracy")
ANSWER_COLUMNS = ("base-onnx-fp32", "specialised-onnx-fp32", "specialised-onnx-int4")
"""Models whose answers the report shows side by side (those that exist)."""


def skipped(args: Any, reason: str) -> None:
    """Outputs of a stage with nothing to do: an empty folder and a note."""
    with atomic_path(args.out) as out:
        out.mkdir()
    write_json(args.metrics, {"skipped": reason})
    _write_csv(args.plots, {})
    with atomic_path(args.report) as tmp:
        tmp.write_text(f"# LLM generation variants\n\nSkipped: {reason}. Stage `llm` compresses "
                       "a causal-LM teacher (`make study-smollm2`).\n")
    logger.info("skipped: %s", reason)


def benchmark(rows: dict[str, dict], runtimes: dict, tokenizer, x: Any, p: Any,
              form: str, base: str, out: Path) -> None:
    """Add ``ttft_ms``, ``decode_tps``, ``decode_speedup`` (over torch fp32) and
    ``peak_rss_mb`` to the rows of the benchmarked (specialised) models."""
    prompt = bench.bench_prompt(tokenizer, reference_documents()[0], p.bench_prompt_tokens)
    timed = bench.run(runtimes, prompt, p.bench_new_tokens, p.bench_rounds)
    torch_tps = timed["specialised-torch-fp32"]["decode_tps"]
    common = ["--prompt-tokens", str(p.bench_prompt_tokens), "--new-tokens",
              str(p.bench_new_tokens), "--threads", str(p.threads)]
    for name, t in timed.items():
        child = ["--base", base, "--form", form] if "-torch-" in name else \
            ["--onnx", str(out / f"{name}.onnx")]
        rows[name] |= t | {"decode_speedup": t["decode_tps"] / torch_tps,
                           "peak_rss_mb": bench.peak_rss_mb(child + common)}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}" if abs(v) < 10 \
            else f"{v:.1f}"
    return "" if v is None else str(v)


def _write_csv(path: str | Path, rows: dict[str, dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", *COLUMNS])
        for name, r in rows.items():
            w.writerow([name, *[_fmt(r.get(c)) for c in COLUMNS]])


def targets(rows: dict[str, dict]) -> list[str]:
    """The issue's targets on the specialised model, each met or missed, with its figure."""
    t, i4, i8 = (rows.get(f"specialised-{v}", {}) for v in ("torch-fp32", "onnx-int4",
                                                           "onnx-int8"))
    out = []
    if i4:
        checks = [("int4 accuracy within 1 point of torch fp32",
                   t["accuracy"] - i4["accuracy"] <= 0.01,
                   f"{i4['accuracy']:.4f} vs {t['accuracy']:.4f}"),
                  ("int4 >= 4x smaller than fp32 on disk", t["size_mb"] / i4["size_mb"] >= 4,
                   f"{t['size_mb'] / i4['size_mb']:.1f}x ({i4['size_mb']:.0f} MB)"),
                  ("int4 decode >= 2x torch fp32 tokens/s", i4.get("decode_speedup", 0) >= 2,
                   f"{i4.get('decode_speedup', float('nan')):.1f}x"),
                  ("int4 same first greedy tokens as fp32 on >= 90% of prompts",
                   i4["greedy_match"] >= 0.9, f"{i4['greedy_match']:.3f}")]
        out += [f"- {name}: **{'met' if ok else 'missed'}** ({fig})" for name, ok, fig in checks]
    if i8:
        out.append(f"- int8 >= 98% classification agreement with fp32: "
                   f"**{'met' if i8['agreement'] >= 0.98 else 'missed'}** "
                   f"({i8['agreement']:.4f})")
    return out


def write(args: Any, rows: dict[str, dict], texts: dict[str, list[str]], items: list,
          prompt: Any, p: Any, model: str) -> None:
    """Metrics (flat ``<variant>_<figure>``), plot rows and the report."""
    write_json(args.metrics, {f"{name}_{k}": v for name, r in rows.items()
                              for k, v in r.items()})
    _write_csv(args.plots, rows)
    head = "| variant | " + " | ".join(COLUMNS) + " |"
    lines = [f"# LLM generation variants of {model}", "",
             f"Greedy, batch 1, CPU; benchmark: {p.bench_prompt_tokens}-token prompt, "
             f"{p.bench_new_tokens} new tokens, median of {p.bench_rounds} interleaved rounds. "
             "Classification: eval split through the verbalizers; greedy "
             f"match: first {p.gen_tokens} tokens equal torch fp32's.", "",
             head, "|---|" + "---:|" * len(COLUMNS)]
    lines += ["| " + name + " | " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |"
              for name, r in rows.items()]
    lines += ["", "## Targets", "", *targets(rows), "", "## Answers side by side", ""]
    shown = {n: texts[n] for n in ANSWER_COLUMNS if n in texts}
    lines.append(answers.table(items, shown, prompt))
    with atomic_path(args.report) as tmp:
        tmp.write_text("\n".join(lines))
