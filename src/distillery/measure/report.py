"""The study's headline numbers: the recommended variant, targets checked against measured
metrics, as Markdown.

Headline ratios compare like with like: the recommended student against the teacher in the
same runtime and precision (``student-...-onnx-int8`` vs ``teacher-onnx-int8``); the ratio
against the PyTorch fp32 teacher, which also counts the runtime switch, is a secondary line.
Speed is end to end (text in, label out, tokenisation included) wherever it was measured; the
model-only figure is reported beside it, and the graph-level targets (fused int8, pruning) use
it. Scores carry 95% bootstrap intervals and score differences their paired intervals
(:mod:`distillery.measure.intervals`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from distillery.config.report import ReportParams

STAGES = ("data", "prepare", "hpo", "label", "nas", "distill", "compress", "export", "benchmark")
TEACHER = "teacher-torch-fp32"
INT8, INT8_PLAIN = "student-onnx-int8", "student-onnx-int8-dynamic"
"""The student in the export's int8 recipe (fused by default) and in plain
``quantize_dynamic`` (the baseline the fusion must beat)."""
UNPRUNED, PRUNED = "student-onnx-fp32", "student-pruned-onnx-fp32"
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
_RUNTIME = re.compile(r"^(?P<model>.+?)-(?P<runtime>torch|onnx)-(?P<precision>[a-z0-9]+)"
                      r"(?P<recipe>-[a-z0-9_-]+?)?(?P<provider>@\w+)?$")


@dataclass
class Target:
    """One quality or speed target: ``measured`` must reach ``required`` (None: the variants
    it compares were not measured)."""

    key: str
    """Short name in ``metrics/report.json``."""
    name: str
    measured: float | None
    required: float
    higher_is_better: bool = True
    paired: str | None = None
    """For targets on a score difference: the ``"a vs b"`` key of the paired interval."""
    rounds: tuple[str, str] | None = None
    """For speed-up targets: ``(slower, faster)`` variants whose per-round latency ratio
    shows the spread of ``measured``."""

    @property
    def met(self) -> bool:
        if self.measured is None:
            return False
        if self.higher_is_better:
            return self.measured >= self.required
        return self.measured <= self.required


def latency(row: dict[str, Any]) -> float:
    """The batch-1 p50 a caller waits for: end to end where measured, else model only."""
    return row.get("e2e_latency_ms_p50", row["latency_ms_p50"])


def variants(bench: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The variant rows of ``metrics/benchmark.json`` (skipping its other keys)."""
    return {k: v for k, v in bench.items() if isinstance(v, dict) and "accuracy" in v}


def counterpart(name: str) -> str | None:
    """The teacher in the same runtime, precision and provider as variant ``name`` (the
    quantisation recipe is the export's, the same for teacher and student)."""
    m = _RUNTIME.match(name)
    if m is None:
        return None
    return f"teacher-{m['runtime']}-{m['precision']}{m['provider'] or ''}"


def recommend(bench: dict[str, Any], p: ReportParams, metric: str) -> str | None:
    """The student variant to ship (baselines are compared with it, never shipped: the Space
    serves an ONNX file): the best ``metric`` among those within
    ``report.max_latency_ms`` (end to end) and ``report.max_size_mb`` (ties: the faster one);
    None if none fits."""
    fits = [(r[metric], -latency(r), name) for name, r in variants(bench).items()
            if not name.startswith(("teacher", "baseline"))
            and (p.max_latency_ms is None or latency(r) <= p.max_latency_ms)
            and (p.max_size_mb is None or r["size_mb"] <= p.max_size_mb)]
    return max(fits)[2] if fits else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(bench: dict[str, Any], p: ReportParams, metric: str = "accuracy",
            recommended: str | None = None) -> list[Target]:
    """The targets of ``report.*`` params, computed from ``metrics/benchmark.json``."""
    rows = variants(bench)
    m = METRIC_NAMES[metric]

    def get(name: str | None, key: str) -> float | None:
        return rows[name][key] if name in rows else None

    def lat(name: str | None) -> float | None:
        return latency(rows[name]) if name in rows else None

    rec = recommended or "recommended (none fits the limits)"
    twin = counterpart(recommended) if recommended else None
    twin_name = twin or "its teacher"
    diff = [get(INT8_PLAIN, metric), get(INT8, metric)]
    drop = [get(UNPRUNED, metric), get(PRUNED, metric)]
    return [
        Target("teacher_score", f"{TEACHER} eval {m}", get(TEACHER, metric), p.min_teacher_score),
        Target("student_ratio", f"{rec} {m} / {twin_name} {m}", _ratio(get(recommended, metric),
                                                          get(twin, metric)),
               p.min_student_ratio, paired=f"{recommended} vs {twin}"),
        Target("speedup_same_runtime", f"end-to-end batch-1 p50 speed-up, same runtime and "
               f"precision ({twin_name} / {rec})", _ratio(lat(twin), lat(recommended)),
               p.min_speedup_same_runtime, rounds=(twin or "", recommended or "")),
        Target("speedup_vs_torch_fp32", f"end-to-end batch-1 p50 speed-up ({TEACHER} / {rec})",
               _ratio(lat(TEACHER), lat(recommended)), p.min_speedup,
               rounds=(TEACHER, recommended or "")),
        Target("size_ratio", f"size reduction ({TEACHER} MB / {rec} MB)",
               _ratio(get(TEACHER, "size_mb"), get(recommended, "size_mb")), p.min_size_ratio),
        Target("fused_latency_ratio", f"fused int8 model-only latency ({INT8} / {INT8_PLAIN})",
               _ratio(get(INT8, "latency_ms_p50"), get(INT8_PLAIN, "latency_ms_p50")),
               p.max_fused_latency_ratio, higher_is_better=False),
        Target("fused_score_drop", f"fused int8 {m} loss ({INT8_PLAIN} - {INT8})",
               None if None in diff else diff[0] - diff[1], p.max_fused_score_drop,
               higher_is_better=False, paired=f"{INT8_PLAIN} vs {INT8}"),
        Target("pruned_speedup", f"structured pruning model-only speed-up ({UNPRUNED} / "
               f"{PRUNED} p50)",
               _ratio(get(UNPRUNED, "latency_ms_p50"), get(PRUNED, "latency_ms_p50")),
               p.min_pruned_speedup),
        Target("pruned_score_drop", f"structured pruning {m} loss ({UNPRUNED} - {PRUNED})",
               None if None in drop else drop[0] - drop[1], p.max_pruned_score_drop,
               higher_is_better=False, paired=f"{UNPRUNED} vs {PRUNED}"),
    ]


def _with_interval(value: float, interval: list[float] | None) -> str:
    return f"{value:.4f}" if not interval else \
        f"{value:.4f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _ms(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.2f}" if row.get(key) is not None else "–"


def _variants_table(bench: dict[str, Any], recommended: str | None,
                    scores: dict[str, Any] | None = None) -> list[str]:
    lines = ["| variant | provider | accuracy [95% CI] | macro-F1 [95% CI] "
             "| end-to-end p50 (ms) | model p50 (ms) | model p95 (ms) | throughput (ex/s) "
             "| size (MB) | params (M) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = variants(bench)
    order = ([recommended] if recommended else []) + [n for n in rows if n != recommended]
    for name in order:
        r, ci = rows[name], (scores or {}).get(name, {})
        label = f"**{name}** (recommended)" if name == recommended else name
        lines.append(
            f"| {label} | {r['provider']} | {_with_interval(r['accuracy'], ci.get('accuracy'))} "
            f"| {_with_interval(r['macro_f1'], ci.get('macro_f1'))} "
            f"| {_ms(r, 'e2e_latency_ms_p50')} | {r['latency_ms_p50']:.2f} "
            f"| {r['latency_ms_p95']:.2f} | {r['throughput_per_s']:.0f} | {r['size_mb']:.1f} "
            f"| {r['n_params'] / 1e6:.2f} |"
        )
    return lines


def round_ratios(rounds: dict[str, list[float]], slow: str, fast: str) -> list[float]:
    """``slow / fast`` latency in each interleaved round (empty if either is missing)."""
    a, b = rounds.get(slow), rounds.get(fast)
    if not a or not b or len(a) != len(b):
        return []
    return [x / y for x, y in zip(a, b, strict=True) if y > 0]


def paired_cell(t: Target, paired: dict[str, Any] | None,
                rounds: dict[str, list[float]] | None = None) -> str:
    """The evidence beside a target: the paired 95% interval of a score difference, or the
    spread of a speed-up over the interleaved rounds; "" when it has neither."""
    if t.rounds and rounds:
        r = round_ratios(rounds, *t.rounds)
        if r:
            q1, q3 = np.percentile(r, [25, 75])
            return (f"per round: {q1:.2f} to {q3:.2f} (middle half of {len(r)} rounds), "
                    f"{min(r):.2f} to {max(r):.2f} in all")
    d = (paired or {}).get(t.paired or "")
    if not d:
        return ""
    lo, hi = d["ci95"]
    verdict = "" if d["distinguishable"] else "; not distinguishable"
    return f"{d['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]{verdict}"


def _classes(classes: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Per-class F1 of the teacher and the shipped student, side by side."""
    who = list(classes)
    lines = ["| class | support | " + " | ".join(f"{w} P / R / F1" for w in who) + " |",
             "|---|---:|" + "---:|" * len(who)]
    first = classes[who[0]]
    for name in first:
        cells = [f"{classes[w][name]['precision']:.3f} / {classes[w][name]['recall']:.3f} / "
                 f"{classes[w][name]['f1']:.3f}" for w in who]
        lines.append(f"| {name} | {first[name]['support']} | " + " | ".join(cells) + " |")
    return lines


def _against_baselines(bench: dict[str, Any], metric: str, recommended: str,
                       paired: dict[str, Any] | None) -> str | None:
    """The recommended model against the best baseline: scores, paired interval, speed."""
    rows = variants(bench)
    base = {k: v for k, v in rows.items() if k.startswith("baseline")}
    if not base:
        return None
    best = max(base, key=lambda k: base[k][metric])
    r, b, m = rows[recommended], base[best], METRIC_NAMES[metric]
    d = (paired or {}).get(f"{recommended} vs {best}")
    gap = f"{r[metric] - b[metric]:+.4f} {m}"
    if d:
        lo, hi = d["ci95"]
        gap += f" (paired 95% interval [{lo:+.4f}, {hi:+.4f}]" + \
            ("" if d["distinguishable"] else "; not distinguishable") + ")"
    speed = latency(b) / latency(r)
    pace = f"{speed:.1f}x faster" if speed >= 1 else f"{1 / speed:.1f}x slower"
    return (f"Against the best baseline `{best}` ({m} {b[metric]:.4f}, {latency(b):.2f} ms end "
            f"to end): {gap}, {pace}.")


def _headline(bench: dict[str, Any], p: ReportParams, metric: str,
              recommended: str | None, paired: dict[str, Any] | None = None) -> list[str]:
    limits = ", ".join(f"{name} <= {v:g} {unit}" for name, v, unit in (
        ("latency", p.max_latency_ms, "ms"), ("size", p.max_size_mb, "MB")) if v is not None)
    limits = f" (limits in `report.*`: {limits})" if limits else ""
    if recommended is None:
        return [f"**No student variant fits the limits{limits}.** Relax `report.max_latency_ms`"
                " / `report.max_size_mb` or compress further.", ""]
    rows = variants(bench)
    r, twin = rows[recommended], counterpart(recommended)
    m = METRIC_NAMES[metric]
    out = [f"**Recommended: `{recommended}`**{limits}: eval {m} {r[metric]:.4f}, batch-1 p50 "
           f"{latency(r):.2f} ms end to end ({r['latency_ms_p50']:.2f} ms model only), "
           f"{r['size_mb']:.1f} MB, {r['n_params'] / 1e6:.2f}M parameters."]
    for other, how in ((twin, "same runtime and precision"),
                       (TEACHER, "runtime switch included")):
        if other not in rows or (other == TEACHER and twin == TEACHER):
            continue
        t = rows[other]
        out.append(f"Against `{other}` ({how}): {latency(t) / latency(r):.1f}x faster end to "
                   f"end ({t['latency_ms_p50'] / r['latency_ms_p50']:.1f}x model only), "
                   f"{t['size_mb'] / r['size_mb']:.1f}x smaller, {r[metric] / t[metric]:.3f} "
                   f"of its {m}.")
    line = _against_baselines(bench, metric, recommended, paired)
    if line:
        out.append(line)
    return [" ".join(out), ""]


def _generic_vs_specialised(hpo: dict[str, Any]) -> list[str]:
    """A causal-LM teacher before and after LoRA: task accuracy through lm-eval and the
    perplexity of a general reference text (empty for an encoder teacher)."""
    if "base_zero_shot_acc" not in hpo:
        return []
    k = hpo["few_shot_k"]
    rows = [("base, zero-shot", hpo["base_zero_shot_acc"], hpo["base_word_perplexity"],
             hpo["base_bits_per_byte"])]
    if k:
        rows.append((f"base, {k}-shot", hpo["base_few_shot_acc"], None, None))
    rows.append(("LoRA-specialised, zero-shot", hpo["specialised_acc"],
                 hpo["specialised_word_perplexity"], hpo["specialised_bits_per_byte"]))
    lines = ["## Teacher: generic vs specialised", "",
             f"`{hpo.get('teacher_prompt', '')!r}` with verbalizers "
             f"`{hpo.get('teacher_verbalizers', '')}`; accuracy by lm-eval on the eval split, "
             "perplexity by lm-eval on a reference text (scikit-learn's dataset descriptions).",
             "", "| teacher | lm-eval accuracy | word perplexity | bits per byte |",
             "|---|---:|---:|---:|"]
    for name, acc, ppl, bpb in rows:
        cells = ["" if v is None else f"{v:.4f}" if v < 10 else f"{v:.1f}" for v in (ppl, bpb)]
        lines.append(f"| {name} | {acc:.4f} | {cells[0]} | {cells[1]} |")
    lines += ["", f"The pipeline's teacher (classifier form, same prompt) scores "
              f"{hpo['teacher_eval_accuracy']:.4f} accuracy on the eval split; "
              f"{100 * hpo['form_token_match']:.0f}% of the probe texts tokenise as lm-eval "
              "tokenises them.", ""]
    return lines


BOUNDS_WARN = 0.5
"""Share of HPO trials at one end of a range above which the range is named as a cause."""
FEW_PER_CLASS = 100
"""Labelled train examples per class below which more data is named as a cause."""


def bottleneck(bench: dict[str, Any], stage_metrics: dict[str, dict[str, Any]],
               p: ReportParams, metric: str = "accuracy") -> list[str]:
    """When the teacher holds the study back, what to say first: its score is below
    ``report.min_teacher_score``, or a student scores above it (students learn from its
    logits). Each likely cause read from the ``prepare`` and ``hpo`` metrics comes with the
    params to change. Empty when neither holds.
    """
    rows = variants(bench)
    teacher = rows.get(TEACHER, {}).get(metric)
    if teacher is None:
        return []
    m = METRIC_NAMES[metric]
    students = {k: v[metric] for k, v in rows.items()
                if not k.startswith(("teacher", "baseline"))}
    best = max(students, key=students.get) if students else None
    findings = []
    if teacher < p.min_teacher_score:
        findings.append(f"the fine-tuned teacher scores {m} {teacher:.4f}, below "
                        f"`report.min_teacher_score` = {p.min_teacher_score}")
    if best is not None and students[best] > teacher:
        findings.append(f"a student scores above its teacher ({best}: {students[best]:.4f} vs "
                        f"{teacher:.4f}), so the teacher's logits hold the students back")
    if not findings:
        return []
    return ["**The teacher is the bottleneck**: " + "; ".join(findings) + ". Likely causes, "
            "with the params to change:", "", *[f"- {c}" for c in _teacher_causes(
                stage_metrics.get("prepare", {}), stage_metrics.get("hpo", {}))], ""]


def _teacher_causes(prep: dict[str, Any], hpo: dict[str, Any]) -> list[str]:
    """Causes of a weak teacher visible in the ``prepare`` and ``hpo`` metrics."""
    out = []
    if hpo.get("final_steps_run") == hpo.get("final_steps") and \
            hpo.get("final_best_step") == hpo.get("final_steps"):
        out.append(f"still improving when training ended (best validation score at the last "
                   f"of {hpo['final_steps']} steps): train longer with `hpo.steps_per_class` "
                   "or `hpo.min_epochs`")
    gap = hpo.get("teacher_val_score", 0) - hpo.get("best_trial_score", 0)
    if gap > 0.05:
        out.append(f"trials scored {gap:.3f} below the retrained teacher: their budget "
                   f"({hpo.get('trial_examples')} examples, {hpo.get('trial_steps')} steps) "
                   "cannot rank recipes; raise `hpo.trial_examples` (`all` = final fidelity)")
    n, c = prep.get("train_count"), prep.get("n_classes")
    if n and c and n / c < FEW_PER_CLASS:
        out.append(f"{n / c:.0f} labelled train examples a class: use more with "
                   "`prepare.n_train: all` (or a larger count) if the data has them")
    if "best_score_full" not in hpo and hpo.get("teacher_kind") != "causal":
        out.append("only LoRA was searched: add full fine-tuning, `hpo.method: [full, lora]`")
    for key, share in hpo.items():
        if key.startswith("on_bounds_") and share >= BOUNDS_WARN:
            out.append(f"{share:.0%} of trials at an end of `hpo.{key[10:]}`: widen that range")
    out.append(f"{hpo.get('n_trials', '?')} HPO trials ({hpo.get('n_pruned', 0)} pruned): more "
               "trials with `hpo.n_trials` search the recipe further")
    return out


def _names(names: list[Any], shown: int = 8) -> str:
    """The first ``shown`` class names and how many more."""
    head = ", ".join(str(x) for x in names[:shown])
    return head + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")


def markdown(bench: dict[str, Any], stage_metrics: dict[str, dict[str, Any]],
             p: ReportParams, metric: str = "accuracy",
             classes: dict[str, Any] | None = None, recommended: str | None = None,
             ints: dict[str, Any] | None = None) -> str:
    """Recommendation, results table, targets, per-class scores and stage durations as one
    Markdown document; ``ints``: the benchmark's intervals (``scores``, ``paired``)."""
    prep = stage_metrics.get("prepare", {})
    names = prep.get("label_names") or list((classes or {}).get("teacher", {}))
    lines = bottleneck(bench, stage_metrics, p, metric)
    if prep:
        lines += [f"Data: {prep.get('n_classes', '?')} classes "
                  f"({_names(names)}); "
                  f"{prep.get('train_count', '?')} train / {prep.get('val_count', '?')} val / "
                  f"{prep.get('transfer_count', '?')} transfer / {prep.get('eval_count', '?')} "
                  f"eval examples{'; sentence pairs' if prep.get('pair') else ''}. "
                  f"Selection metric (`task.metric`): {METRIC_NAMES[metric]}.", ""]
    lines += _headline(bench, p, metric, recommended, (ints or {}).get("paired"))
    threads = bench.get("threads")
    lines += ["## Variants", ""]
    if threads:
        lines += ["Threads: " + ", ".join(f"{k} {v}" for k, v in threads.items())
                  + f"; {bench.get('rounds', '?')} interleaved rounds, p50 = median of the "
                  "round medians. End to end = text in, label out (tokenisation included: "
                  "`tokenizers` for ONNX files as the Space serves them, the transformers "
                  "tokenizer for torch); model = the forward pass on token ids. Intervals: "
                  "95% bootstrap over the eval examples.", ""]
    lines += _variants_table(bench, recommended, (ints or {}).get("scores"))
    skipped = bench.get("skipped_providers") or {}
    if skipped:
        lines += ["", "Skipped execution providers: "
                  + "; ".join(f"`{k}`: {v}" for k, v in skipped.items())]
    lines += ["", "## Targets", "", "Score differences come with their paired 95% bootstrap "
              f"interval ({METRIC_NAMES[metric]}, first minus second model, same eval "
              "examples); \"not distinguishable\" where it holds 0. Speed-ups come with the "
              "same ratio taken round by round over the interleaved rounds.", "",
              "| target | measured | required | met | paired difference [95% CI] or spread "
              "over rounds |",
              "|---|---:|---:|---|---|"]
    for t in targets(bench, p, metric, recommended):
        op = ">=" if t.higher_is_better else "<="
        value, met = ("n/a", "n/a (not measured)") if t.measured is None else \
            (f"{t.measured:.3f}", "yes" if t.met else "NO")
        cell = paired_cell(t, (ints or {}).get("paired"), (ints or {}).get("rounds_ms"))
        lines.append(f"| {t.name} | {value} | {op} {t.required} | {met} | {cell} |")
    teacher = _generic_vs_specialised(stage_metrics.get("hpo", {}))
    if teacher:
        lines += ["", *teacher[:-1]]
    if classes:
        lines += ["", "## Per class (eval split)", "", *_classes(classes)]
    lines += ["", "## Stage durations", "", "| stage | seconds (compute, without start-up) |",
              "|---|---:|"]
    total = 0.0
    for stage in STAGES:
        d = stage_metrics.get(stage, {}).get("duration_s")
        if d is not None:
            total += d
            lines.append(f"| {stage} | {d:.0f} |")
    lines.append(f"| **total** | **{total:.0f}** |")
    return "\n".join(lines) + "\n"
