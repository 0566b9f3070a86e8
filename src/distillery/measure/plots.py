"""Matplotlib PNGs for people who will not run ``dvc plots show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from distillery.core.io import atomic_path  # noqa: E402

LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def nas_scatter(rows: list[dict[str, Any]], path: str | Path, best: dict[str, Any],
                metric: str = "accuracy", front: list[dict[str, Any]] | None = None,
                min_speedup: float | None = None) -> None:
    """Proxy score vs measured speed-up over the teacher (int8 ONNX, end to end; parameters
    when candidates were not timed), one colour per generation, the selected one circled,
    the Pareto front as a staircase and the speed budget as a vertical line."""
    timed = all(r.get("speedup") == r.get("speedup") and r.get("speedup") is not None
                for r in rows)

    def x(r: dict[str, Any]) -> float:
        return r["speedup"] if timed else r["n_params"] / 1e6

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sc = ax.scatter([x(r) for r in rows], [r["score"] for r in rows],
                    c=[r["generation"] for r in rows], cmap="viridis", s=40, edgecolor="k",
                    linewidth=0.3)
    ax.scatter([x(best)], [best["score"]], s=180, facecolor="none", edgecolor="red",
               linewidth=1.5, label="selected")
    if front:
        ax.step([x(r) for r in front], [r["score"] for r in front],
                where="pre" if timed else "post", color="0.4", linestyle="--", linewidth=1,
                label="Pareto front")
    if timed and min_speedup is not None:
        ax.axvline(min_speedup, color="tab:red", linestyle=":", linewidth=1,
                   label=f"speed budget {min_speedup:g}x")
    fig.colorbar(sc, ax=ax, label="generation",
                 ticks=sorted({r["generation"] for r in rows}))
    ax.set(xlabel="speed-up over the int8 teacher, end to end (x)" if timed
           else "parameters (M)", ylabel=f"proxy validation {LABELS[metric]}",
           title="NAS: every candidate")
    ax.legend(loc="lower left" if timed else "lower right", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def hpo_trials(rows: list[dict[str, Any]], path: str | Path, n_initial: int,
               metric: str = "accuracy") -> None:
    """Score per trial (initial design vs model-guided; marker by method, hollow = pruned:
    its best score when stopped) and the best-so-far curve of finished trials."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = {"full": "o", "lora": "^"}
    for r in rows:
        guided = r["trial"] >= n_initial
        color = "tab:orange" if guided else "tab:blue"
        ax.scatter([r["trial"]], [r["score"]], marker=markers.get(r.get("method"), "o"),
                   facecolors="none" if r.get("pruned") else color, edgecolors=color)
    for label, color in (("initial design", "tab:blue"), ("guided", "tab:orange")):
        ax.scatter([], [], color=color, label=label)
    for method in sorted({r.get("method") for r in rows} - {None}):
        ax.scatter([], [], marker=markers.get(method, "o"), color="grey", label=method)
    if any(r.get("pruned") for r in rows):
        ax.scatter([], [], facecolors="none", edgecolors="grey", label="pruned")
    done = [r for r in rows if not r.get("pruned")]
    ax.step([r["trial"] for r in done], [r["best_so_far"] for r in done], where="post",
            color="k", label="best so far")
    ax.set(xlabel="trial", ylabel=f"validation {LABELS[metric]}",
           title="HPO of the teacher's fine-tuning")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


LABEL_SPOTS = [(4, 4, "left"), (4, -10, "left"), (-4, 4, "right"), (-4, -10, "right"),
               (4, 12, "left"), (4, -18, "left"), (-4, 12, "right"), (-4, -18, "right")]
"""Offsets (points) and alignments tried in turn for a point's label, first free one wins."""


def _label_points(ax, fig, points: list[tuple[float, float, str]]) -> None:
    """Annotate each ``(x, y, text)`` at the first spot of :data:`LABEL_SPOTS` whose box
    overlaps no label placed before (the first spot when none is free)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    for x, y, text in points:
        for dx, dy, ha in LABEL_SPOTS:
            note = ax.annotate(text, (x, y), fontsize=7, xytext=(dx, dy), ha=ha,
                               textcoords="offset points")
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                break
            note.remove()
        else:
            dx, dy, ha = LABEL_SPOTS[0]
            note = ax.annotate(text, (x, y), fontsize=7, xytext=(dx, dy), ha=ha,
                               textcoords="offset points")
            box = note.get_window_extent(renderer)
        placed.append(box)


def pareto(rows: list[dict[str, Any]], path: str | Path, metric: str = "accuracy",
           recommended: str | None = None) -> None:
    """``metric`` vs batch-1 latency (end to end where measured, else model only); marker area
    proportional to size on disk; teachers in grey, the recommended variant circled in red;
    labels placed so that they do not overlap."""
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(8, 5.2))
    for r in rows:
        r["x"] = r.get("e2e_latency_ms_p50") or r["latency_ms_p50"]
    for r in rows:
        teacher = r["variant"].startswith("teacher")
        ax.scatter(r["x"], r[metric], s=20 + 4 * r["size_mb"], alpha=0.6,
                   edgecolor="k", color="0.6" if teacher else "tab:blue")
        if r["variant"] == recommended:
            ax.scatter(r["x"], r[metric], s=260, facecolors="none",
                       edgecolors="tab:red", linewidths=2, label=f"recommended: {recommended}")
    if recommended:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 2, 3, 10 rather than 2x10^0
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set(xlabel="end-to-end latency p50, batch 1 (ms, log)", ylabel=f"eval {LABELS[metric]}",
           title=f"{LABELS[metric]} vs latency (marker area ~ size on disk)")
    ax.grid(alpha=0.3, which="both")
    ax.margins(x=0.12)  # room for the labels of the rightmost points
    ordered = sorted(rows, key=lambda r: -r[metric])
    _label_points(ax, fig, [(r["x"], r[metric], r["variant"]) for r in ordered])
    _save(fig, path)


def confusion(matrices: dict[str, np.ndarray], names: list[str], path: str | Path) -> None:
    """Row-normalised confusion matrices side by side (rows: actual, columns: predicted)."""
    n = len(names)
    size = min(14.0, 2.0 + 0.45 * n)
    fig, axes = plt.subplots(1, len(matrices), figsize=(size * len(matrices), size),
                             squeeze=False)
    for ax, (title, m) in zip(axes[0], matrices.items(), strict=True):
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), names, rotation=90 if n > 4 else 0, fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        if n <= 25:
            for i in range(n):
                for j in range(n):
                    if m[i, j]:
                        ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if norm[i, j] > 0.5 else "black")
        ax.set(xlabel="predicted", ylabel="actual", title=title)
    fig.tight_layout()
    _save(fig, path)


def regret_curves(rows: list[dict[str, Any]], path: str | Path,
                  title: str = "HPO samplers on the tabular benchmark") -> None:
    """Mean best-so-far regret per sampler and trial with the 25-75% band over runs."""
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for name in dict.fromkeys(r["sampler"] for r in rows):
        rs = [r for r in rows if r["sampler"] == name]
        xs = [r["trial"] for r in rs]
        (line,) = ax.plot(xs, [100 * r["regret_mean"] for r in rs], label=name)
        ax.fill_between(xs, [100 * r["regret_q25"] for r in rs],
                        [100 * r["regret_q75"] for r in rs], color=line.get_color(), alpha=0.15)
    ax.set(xlabel="trial", ylabel="regret (points below the table's best)", title=title)
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def proxy_calibration(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Kendall's tau of each proxy against the reference, vs its cost share."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for proxy in dict.fromkeys(r["proxy"] for r in rows):
        rs = sorted((r for r in rows if r["proxy"] == proxy), key=lambda r: r["cost_share"])
        ax.plot([100 * r["cost_share"] for r in rs], [r["kendall_tau"] for r in rs], marker="o",
                label=proxy)
        for r in rs:
            ax.annotate(f"{r['steps']}", (100 * r["cost_share"], r["kendall_tau"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.8, color="0.5", linestyle="--", linewidth=1, label="tau = 0.8")
    ax.axvline(10, color="0.5", linestyle=":", linewidth=1, label="10% of the cost")
    ax.set(xlabel="cost (% of the reference training)", ylabel="Kendall tau vs reference",
           title="NAS proxy calibration (labels: proxy steps)")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def ablation(rows: list[dict[str, Any]], path: str | Path, metric: str = "accuracy") -> None:
    """Score of every run of the KD ablation (one dot per seed), the mean of each variant as
    a bar."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, v in enumerate(variants):
        scores = [r[metric] for r in rows if r["variant"] == v]
        ax.bar(i, np.mean(scores), color="tab:blue", alpha=0.3, width=0.6)
        ax.scatter([i] * len(scores), scores, color="tab:blue", zorder=3)
    ax.set_xticks(range(len(variants)), variants)
    lo = min(r[metric] for r in rows)
    hi = max(r[metric] for r in rows)
    ax.set_ylim(lo - 0.02, hi + 0.01)
    ax.set(ylabel=f"eval {LABELS[metric]}", title="What distillation buys (dots: seeds)")
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def paradox(rows: list[dict[str, Any]], path: str | Path, metric: str = "accuracy") -> None:
    """Each architecture's mean score (over seeds) at the short and at the long budget, one
    line per architecture coloured by its parameters: crossing lines are rank flips."""
    short, long = rows[0]["short_steps"], rows[0]["long_steps"]
    sizes = [r["n_params"] / 1e6 for r in rows]
    norm = plt.Normalize(min(sizes), max(sizes))
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for r, size in zip(rows, sizes, strict=True):
        ys = [r["short_mean"], r["long_mean"]]
        ax.plot([0, 1], ys, marker="o", color=cmap(norm(size)), linewidth=1.2)
        ax.annotate(r["arch"], (1, ys[1]), fontsize=7, xytext=(4, 0), textcoords="offset points",
                    va="center")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="parameters (M)")
    ax.set_xticks([0, 1], [f"{short} steps", f"{long} steps"])
    ax.set_xlim(-0.15, 1.35)
    ax.set(ylabel=f"validation {LABELS[metric]} (mean over seeds)",
           title="Students from scratch: ranking at a short vs a long budget")
    ax.grid(alpha=0.3)
    _save(fig, path)


def kd_grid(rows: list[dict[str, Any]], path: str | Path, metric: str = "accuracy") -> None:
    """Mean score over seeds of each (alpha, temperature) cell, annotated with the seeds'
    range."""
    alphas = sorted({r["alpha"] for r in rows})
    temps = sorted({r["temperature"] for r in rows})
    grid = np.full((len(alphas), len(temps)), np.nan)
    spread: dict[tuple[int, int], tuple[float, float]] = {}
    for i, a in enumerate(alphas):
        for j, t in enumerate(temps):
            xs = [r[metric] for r in rows if r["alpha"] == a and r["temperature"] == t]
            if xs:
                grid[i, j] = float(np.mean(xs))
                spread[i, j] = (min(xs), max(xs))
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    im = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto")
    for (i, j), (lo, hi) in spread.items():
        ax.text(j, i, f"{grid[i, j]:.4f}\n[{lo:.3f}, {hi:.3f}]", ha="center", va="center",
                fontsize=7, color="white" if grid[i, j] < np.nanmean(grid) else "black")
    ax.set_xticks(range(len(temps)), [f"{t:g}" for t in temps])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set(xlabel="temperature T", ylabel="alpha (weight of the hard labels)",
           title=f"KD grid: mean {LABELS[metric]} over seeds [range]")
    fig.colorbar(im, ax=ax)
    _save(fig, path)
