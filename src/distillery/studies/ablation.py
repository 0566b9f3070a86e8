"""What distillation buys: the pipeline's student trained three ways over several seeds, on
the same corpus, steps and initialisation, scored on the same eval examples.

- ``no_kd``: hard labels only (``alpha = 1``: plain fine-tuning; the transfer texts, which
  have no labels, add nothing);
- ``logits``: response-based KD (the teacher's logits, ``distill.alpha`` of hard labels);
- ``layer_wise``: the pipeline's default, logits + TinyBERT hidden-state and attention terms.

A contrast between two variants is the mean over seeds of their score difference, with a 95%
interval from a bootstrap that resamples the eval examples jointly for every seed and
variant (so it counts the examples' noise; the seed spread is reported beside it).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from distillery.config.distill import DistillParams
from distillery.measure.intervals import indices, percentile_interval, resampled_scores

logger = logging.getLogger(__name__)

VARIANTS: dict[str, dict[str, float]] = {
    "no_kd": {"alpha": 1.0, "hidden_weight": 0.0, "attention_weight": 0.0},
    "logits": {"hidden_weight": 0.0, "attention_weight": 0.0},
    "layer_wise": {},
}
"""Variant -> ``distill.*`` overrides."""
CONTRASTS = [("logits", "no_kd"), ("layer_wise", "no_kd"), ("layer_wise", "logits")]


def variant_params(base: DistillParams, variant: str, seed: int,
                   epochs: float) -> DistillParams:
    """``distill.*`` of one run of the study."""
    return dataclasses.replace(base, **VARIANTS[variant], seed=seed, epochs=epochs)


def train_runs(runs: list[tuple[str, DistillParams]], genome: dict[str, int], teacher_dir: str,
               data: str, logits_dir: str, max_length: int, device: Any
               ) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]], int]:
    """Train the student ``genome`` from the teacher once per ``(name, distill params)`` run,
    as stage ``distill`` trains it (:func:`distillery.distill.student.distil`, each run seeded
    by its ``seed``), and predict the eval split.

    Returns:
        One row per run (name, seed, scores), the predictions per name (in run order) and
        the steps of the last run.
    """
    from distillery.core.io import seed_everything
    from distillery.data.prepared import concat, load_prepared
    from distillery.distill import student as student_mod
    from distillery.distill import teacher_logits
    from distillery.measure import evaluate
    from distillery.modeling import loading

    splits, _ = load_prepared(data)
    dev = splits["eval"]
    corpus = concat(splits["train"], splits["transfer"])
    t_logits = teacher_logits.load_many(logits_dir, splits, "train", "transfer")
    tok = loading.load_tokenizer(teacher_dir)
    rows: list[dict[str, Any]] = []
    preds: dict[str, list[np.ndarray]] = {}
    steps = 0
    for name, p in runs:
        seed_everything(p.seed)
        teacher = loading.load_classifier(teacher_dir)
        student, losses, layer_wise = student_mod.distil(
            genome, teacher, teacher, tok, corpus, t_logits, p, max_length, device,
            desc=f"{name} seed {p.seed}")
        logits = evaluate.predict_logits(student, dev, tok, max_length)
        preds.setdefault(name, []).append(logits.argmax(-1))
        steps = len(losses)
        rows.append({"variant": name, "seed": p.seed, "alpha": p.alpha,
                     "temperature": p.temperature, "layer_wise": layer_wise, "steps": steps,
                     **{k: round(v, 6) for k, v in evaluate.scores(logits, dev.labels).items()}})
        logger.info("%s", rows[-1])
    return rows, preds, steps


def summarise(labels, preds: dict[str, list[np.ndarray]], n_classes: int, metric: str,
              resamples: int = 1000, seed: int = 0,
              contrasts: list[tuple[str, str]] | None = None) -> dict[str, dict]:
    """Per variant: mean, min and max over seeds; per contrast (default :data:`CONTRASTS`):
    mean difference, its 95% interval and whether it excludes 0.

    Args:
        preds: variant -> one ``(n,)`` array of predicted classes per seed (same seeds).
    """
    labels = np.asarray(labels)
    idx = indices(len(labels), resamples, seed)
    full = np.arange(len(labels))[None, :]

    def per_seed(variant: str, rows: np.ndarray) -> np.ndarray:  # (seeds, B)
        return np.stack([resampled_scores(labels, p, rows, n_classes, metric)
                         for p in preds[variant]])

    out: dict[str, dict] = {"variants": {}, "contrasts": {}}
    for v in preds:
        s = per_seed(v, full)[:, 0]
        out["variants"][v] = {"mean": round(float(s.mean()), 6), "min": round(float(s.min()), 6),
                              "max": round(float(s.max()), 6), "seeds": len(s)}
    for a, b in CONTRASTS if contrasts is None else contrasts:
        if a not in preds or b not in preds:
            continue
        d_full = per_seed(a, full)[:, 0] - per_seed(b, full)[:, 0]  # (seeds,)
        d_boot = (per_seed(a, idx) - per_seed(b, idx)).mean(axis=0)  # (B,)
        lo, hi = percentile_interval(d_boot, 0.95)
        out["contrasts"][f"{a} - {b}"] = {
            "diff": round(float(d_full.mean()), 6), "ci95": [round(lo, 6), round(hi, 6)],
            "seed_min": round(float(d_full.min()), 6), "seed_max": round(float(d_full.max()), 6),
            "distinguishable": bool(lo > 0 or hi < 0)}
    return out


def _tables(summary: dict[str, dict], first: str) -> list[str]:
    """Per-run-kind means and the contrasts, as Markdown rows (``first``: the first column's
    name)."""
    lines = [f"| {first} | mean | min | max | seeds |", "|---|---:|---:|---:|---:|"]
    for v, r in summary["variants"].items():
        lines.append(f"| {v} | {r['mean']:.4f} | {r['min']:.4f} | {r['max']:.4f} | "
                     f"{r['seeds']} |")
    lines += ["", "| contrast | mean difference | 95% interval (eval examples) | "
              "per-seed range | distinguishable |", "|---|---:|---|---|---|"]
    for c, r in summary["contrasts"].items():
        lines.append(f"| {c} | {r['diff']:+.4f} | [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}] | "
                     f"[{r['seed_min']:+.4f}, {r['seed_max']:+.4f}] | "
                     f"{'yes' if r['distinguishable'] else 'no'} |")
    return lines


def markdown(summary: dict[str, dict], metric: str, epochs: float, steps: int) -> str:
    """The study's tables."""
    lines = ["# What distillation buys (generated by `dvc repro studies/dvc.yaml`)", "",
             f"The pipeline's student architecture, initialisation and corpus; {epochs:g} "
             f"epochs ({steps} steps) per run; eval {metric}.", ""]
    return "\n".join(lines + _tables(summary, "variant")) + "\n"


def cell(alpha: float, temperature: float) -> str:
    """Name of a cell of the alpha x temperature grid."""
    return f"alpha={alpha:g} T={temperature:g}"


def grid_markdown(summary: dict[str, dict], metric: str, epochs: float, steps: int,
                  reference: str, variant: str) -> str:
    """The alpha x temperature grid's tables: every cell, and every cell against the
    pipeline's own (``reference``)."""
    lines = ["# Distillation's alpha x temperature (generated by `dvc repro "
             "studies/dvc.yaml:kd_grid`)", "",
             f"The pipeline's student architecture, initialisation and corpus, trained as "
             f"`{variant}` (alpha weighs the hard labels, 1 - alpha the teacher's softened "
             f"logits); {epochs:g} epochs ({steps} steps) per run; eval {metric}. "
             f"The pipeline's own setting: {reference}.", ""]
    return "\n".join(lines + _tables(summary, "cell")) + "\n"
