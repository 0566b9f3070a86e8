"""The under-training paradox of the NAS study this project comes from, tested in its own
setting: students of the teacher's family trained **from scratch** (random weights, hard
labels) for a short and a long budget, several seeds each, ranked by eval score.

The claim: at a short budget a small model (9M parameters) beats a large one (46M), and
the order flips at a long one, so a proxy that is too short ranks architectures backwards.
Here that is measured three ways, each with a 95% interval from a bootstrap that resamples
the eval examples (jointly for every run: the comparisons are paired) and, per architecture,
the seeds:

* Kendall's tau between the architectures' mean scores at the short and the long budget
  (negative: the short budget ranks backwards);
* Kendall's tau between score and parameters at each budget (does the short budget favour
  small models where the long one favours large ones?);
* the named pair (``small`` vs ``large``): the score difference at each budget.

Runs are independent, so :func:`train_one` is a plain function of its arguments that a
process pool can call.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from distillery.measure.intervals import percentile_interval


def arch_name(genome: dict[str, int]) -> str:
    return f"{genome['num_hidden_layers']}x{genome['hidden_size']}"


def architectures(layers: list[int], hidden: list[int], head_size: int,
                  ffn_ratio: int) -> list[dict[str, int]]:
    """Every ``layers x hidden`` student, ``hidden / head_size`` heads, FFN ``ffn_ratio x``
    wide (BERT's shape rule)."""
    return [{"num_hidden_layers": n, "hidden_size": h, "num_attention_heads": h // head_size,
             "intermediate_size": ffn_ratio * h}
            for n, h in itertools.product(layers, hidden)]


@dataclass(frozen=True)
class Run:
    """One training run of the study."""

    genome: tuple[tuple[str, int], ...]
    seed: int
    steps: int


def train_one(run: Run, config_dir: str, data_dir: str, lr: float, batch_size: int,
              max_length: int, device: str) -> dict[str, Any]:
    """Train ``run``'s student from scratch on the prepared train split (cross-entropy) and
    predict the eval split. Returns ``n_params``, ``train_s`` and ``preds`` (a list)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from distillery.core.io import Timer, seed_everything
    from distillery.data.prepared import load_prepared
    from distillery.measure import evaluate
    from distillery.modeling import families, loading, training

    torch.set_num_threads(1 if device.startswith("cuda") else torch.get_num_threads())
    splits, _ = load_prepared(data_dir)
    tok = loading.load_tokenizer(config_dir)
    seed_everything(run.seed)
    cfg = families.student_config(AutoConfig.from_pretrained(config_dir), dict(run.genome))
    model = AutoModelForSequenceClassification.from_config(cfg).to(device)
    train_cfg = training.TrainConfig(lr=lr, batch_size=batch_size, max_length=max_length,
                                     steps=run.steps, seed=run.seed)
    with Timer() as t:
        training.train(model, splits["train"], tok, train_cfg, desc=None)
    logits = evaluate.predict_logits(model, splits["eval"], tok, max_length)
    return {"n_params": loading.count_params(model), "train_s": round(t.seconds, 2),
            "preds": logits.argmax(-1).tolist()}


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: undefined
        tau = float(kendalltau(a, b).statistic)
    return 0.0 if math.isnan(tau) else tau


def analyse(labels, correct: np.ndarray, n_params: list[int], names: list[str],
            pair: tuple[str, str], resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The study's statistics with 95% bootstrap intervals.

    Args:
        correct: ``(architectures, seeds, 2, n)`` booleans, budget 0 the short one.
        n_params: parameters of each architecture.
        names: each architecture's name; ``pair`` names the small and the large one.
    """
    n_arch, n_seed, _, n = correct.shape
    rng = np.random.default_rng(seed)
    params = np.asarray(n_params, dtype=float)

    def stats(acc: np.ndarray) -> np.ndarray:  # acc: (A, 2) mean over seeds
        out = [_tau(acc[:, 0], acc[:, 1]), _tau(acc[:, 0], params), _tau(acc[:, 1], params)]
        if pair[0] in names and pair[1] in names:
            s, big = names.index(pair[0]), names.index(pair[1])
            out += [acc[s, 0] - acc[big, 0], acc[s, 1] - acc[big, 1]]
        return np.asarray(out)

    full = correct.mean(-1)  # (A, S, 2)
    point = stats(full.mean(1))
    boot = np.empty((resamples, len(point)))
    for b in range(resamples):
        rows = rng.integers(0, n, n)
        seeds = rng.integers(0, n_seed, (n_arch, n_seed))
        acc = correct[:, :, :, rows].mean(-1)  # (A, S, 2)
        acc = np.take_along_axis(acc, seeds[:, :, None], axis=1).mean(1)  # (A, 2)
        boot[b] = stats(acc)
    keys = ["tau_short_long", "tau_short_params", "tau_long_params", "pair_diff_short",
            "pair_diff_long"][: len(point)]
    out: dict[str, Any] = {}
    for i, k in enumerate(keys):
        lo, hi = percentile_interval(boot[:, i], 0.95)
        out[k] = {"value": round(float(point[i]), 4), "ci95": [round(lo, 4), round(hi, 4)]}
    out["tau_short_long_per_seed"] = [round(_tau(full[:, s, 0], full[:, s, 1]), 4)
                                      for s in range(n_seed)]
    out["per_arch"] = [
        {"arch": names[a], "n_params": int(n_params[a]),
         "short_mean": round(float(full[a, :, 0].mean()), 4),
         "short_min": round(float(full[a, :, 0].min()), 4),
         "short_max": round(float(full[a, :, 0].max()), 4),
         "long_mean": round(float(full[a, :, 1].mean()), 4),
         "long_min": round(float(full[a, :, 1].min()), 4),
         "long_max": round(float(full[a, :, 1].max()), 4)}
        for a in range(n_arch)]
    if "pair_diff_short" in out:
        short, long = out["pair_diff_short"], out["pair_diff_long"]
        out["paradox"] = bool(short["ci95"][0] > 0 and long["ci95"][1] < 0)
        out["pair_flips"] = bool(short["value"] > 0 > long["value"])
    return out


def markdown(result: dict[str, Any], short: int, long: int, seeds: int, pair: tuple[str, str],
             setting: str) -> str:
    """The study's report."""
    def ci(k: str, scale: float = 1.0, fmt: str = "+.3f") -> str:
        r = result[k]
        return (f"{scale * r['value']:{fmt}} [{scale * r['ci95'][0]:{fmt}}, "
                f"{scale * r['ci95'][1]:{fmt}}]")

    per_seed = ", ".join(f"{t:+.3f}" for t in result["tau_short_long_per_seed"])
    lines = ["# The under-training paradox, in its own setting "
             "(generated by `dvc repro studies/dvc.yaml:nas_paradox`)", "", setting, "",
             f"| architecture | parameters (M) | {short} steps: mean [min, max] | "
             f"{long} steps: mean [min, max] |", "|---|---:|---|---|"]
    for r in sorted(result["per_arch"], key=lambda r: r["n_params"]):
        lines.append(f"| {r['arch']} | {r['n_params'] / 1e6:.1f} | {r['short_mean']:.4f} "
                     f"[{r['short_min']:.4f}, {r['short_max']:.4f}] | {r['long_mean']:.4f} "
                     f"[{r['long_min']:.4f}, {r['long_max']:.4f}] |")
    lines += ["", "| statistic (95% bootstrap interval: eval examples and seeds) | value |",
              "|---|---|",
              f"| Kendall tau, ranking at {short} vs {long} steps | {ci('tau_short_long')} |",
              f"| the same per seed | {per_seed} |",
              f"| Kendall tau, score at {short} steps vs parameters | {ci('tau_short_params')} |",
              f"| Kendall tau, score at {long} steps vs parameters | {ci('tau_long_params')} |"]
    if "pair_diff_short" in result:
        lines += [f"| {pair[0]} - {pair[1]} at {short} steps (points) | "
                  f"{ci('pair_diff_short', 100, '+.2f')} |",
                  f"| {pair[0]} - {pair[1]} at {long} steps (points) | "
                  f"{ci('pair_diff_long', 100, '+.2f')} |",
                  "", f"Paradox (the small model ahead at {short} steps and behind at {long}, "
                  f"both intervals excluding 0): **{'yes' if result['paradox'] else 'no'}**; "
                  f"the point estimates {'do' if result['pair_flips'] else 'do not'} flip."]
    return "\n".join(lines) + "\n"
