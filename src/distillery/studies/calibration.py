"""Calibration of NAS proxies: do short, cheap trainings rank architectures as a long one does?

The same ``K`` architectures are trained at every proxy budget (cross-entropy or distillation)
and once at a reference budget (distillation from the fine-tuned teacher on train + transfer,
as the final student is trained); Kendall's tau and Spearman's rho compare each proxy's ranking
with the reference's. A proxy whose tau is high at a small share of the reference's cost can
stand in for it; a negative tau is the "under-training paradox" (short budgets favour shallow
students that a full budget would rank lower).
"""

from __future__ import annotations

import random
from typing import Any

from scipy.stats import kendalltau, spearmanr

from distillery.nas.genome import Genome, key, random_genome


def architectures(space: dict[str, list[int]], k: int, seed: int) -> list[Genome]:
    """``k`` distinct random valid genomes (fewer if the space is smaller)."""
    rng = random.Random(seed)
    out: dict[tuple[int, ...], Genome] = {}
    for _ in range(100 * k):
        g = random_genome(space, rng)
        out.setdefault(key(g), g)
        if len(out) == k:
            break
    return list(out.values())


def rank_agreement(proxy: list[float], reference: list[float]) -> dict[str, float]:
    """Kendall's tau-b and Spearman's rho of two score lists over the same architectures
    (0 where undefined: a constant list ranks nothing)."""
    import math
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: the correlation is undefined (nan)
        tau = float(kendalltau(proxy, reference).statistic)
        rho = float(spearmanr(proxy, reference).statistic)
    # undefined (a proxy that scores every architecture alike) ranks nothing: 0
    return {"kendall_tau": 0.0 if math.isnan(tau) else tau,
            "spearman_rho": 0.0 if math.isnan(rho) else rho}


def table(results: list[dict[str, Any]], reference: dict[tuple[int, ...], float],
          reference_cost: float) -> list[dict[str, Any]]:
    """One row per (proxy, budget): agreement with the reference and relative cost.

    ``results``: rows with ``proxy``, ``steps``, ``genome``, ``score``, ``train_s``.
    """
    rows = []
    for proxy, steps in sorted({(r["proxy"], r["steps"]) for r in results}):
        rs = [r for r in results if (r["proxy"], r["steps"]) == (proxy, steps)]
        ref = [reference[key(r["genome"])] for r in rs]
        cost = sum(r["train_s"] for r in rs)
        rows.append({"proxy": proxy, "steps": steps, **rank_agreement([r["score"] for r in rs],
                                                                      ref),
                     "cost_s": round(cost, 1), "cost_share": cost / reference_cost})
    return rows
