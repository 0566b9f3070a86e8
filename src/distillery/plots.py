"""Matplotlib PNGs for people who will not run ``dvc plots show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from distillery.io import atomic_path  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def nas_scatter(rows: list[dict[str, Any]], path: str | Path, best: dict[str, Any]) -> None:
    """Proxy accuracy vs parameters, one colour per generation, best circled."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sc = ax.scatter(
        [r["n_params"] / 1e6 for r in rows], [r["accuracy"] for r in rows],
        c=[r["generation"] for r in rows], cmap="viridis", s=40, edgecolor="k", linewidth=0.3,
    )
    ax.scatter([best["n_params"] / 1e6], [best["accuracy"]], s=180, facecolor="none",
               edgecolor="red", linewidth=1.5, label="selected")
    fig.colorbar(sc, ax=ax, label="generation",
                 ticks=sorted({r["generation"] for r in rows}))
    ax.set(xlabel="parameters (M)", ylabel="proxy validation accuracy",
           title="NAS: every candidate")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def hpo_trials(rows: list[dict[str, Any]], path: str | Path, n_initial: int) -> None:
    """Score per trial (initial design vs model-guided) and the best-so-far curve."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = [r["trial"] for r in rows]
    ax.scatter(xs[:n_initial], [r["score"] for r in rows[:n_initial]], label="initial design")
    ax.scatter(xs[n_initial:], [r["score"] for r in rows[n_initial:]], label="guided")
    ax.step(xs, [r["best_so_far"] for r in rows], where="post", color="k", label="best so far")
    ax.set(xlabel="trial", ylabel="validation accuracy", title="HPO of LoRA fine-tuning")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def pareto(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Accuracy vs batch-1 latency; marker area proportional to size on disk."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for r in rows:
        ax.scatter(r["latency_ms_p50"], r["accuracy"], s=20 + 4 * r["size_mb"], alpha=0.6,
                   edgecolor="k")
        ax.annotate(r["variant"], (r["latency_ms_p50"], r["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set(xlabel="latency p50, batch 1 (ms, log)", ylabel="dev accuracy",
           title="Accuracy vs latency (marker area ~ size on disk)")
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)
