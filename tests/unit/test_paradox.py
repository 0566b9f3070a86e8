"""The under-training paradox study's statistics on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from distillery.studies import paradox
from distillery.studies.params import ParadoxStudyParams


def test_architectures_follow_berts_shape_rule():
    archs = paradox.architectures([2, 3], [256, 768], head_size=64, ffn_ratio=4)
    assert [paradox.arch_name(a) for a in archs] == ["2x256", "2x768", "3x256", "3x768"]
    assert archs[1] == {"num_hidden_layers": 2, "hidden_size": 768, "num_attention_heads": 12,
                        "intermediate_size": 3072}


def _correct(rates: np.ndarray, n: int = 2000, seed: int = 0) -> np.ndarray:
    """(A, S, 2, n) booleans with the given per-cell accuracies."""
    rng = np.random.default_rng(seed)
    return rng.random((*rates.shape, n)) < rates[..., None]


def test_a_reversed_ranking_is_found_with_its_interval():
    # small models ahead at the short budget, the order reversed at the long one
    short = np.array([0.70, 0.65, 0.60, 0.55])
    rates = np.stack([np.stack([short, short[::-1] + 0.1], axis=1)] * 3, axis=1)  # (A, S, 2)
    names = ["s", "m1", "m2", "big"]
    out = paradox.analyse(None, _correct(rates), [1, 2, 3, 4], names, ("s", "big"),
                          resamples=200)
    assert out["tau_short_long"]["value"] == pytest.approx(-1.0)
    assert out["tau_short_long"]["ci95"][1] < 0
    assert out["tau_short_params"]["value"] == pytest.approx(-1.0)
    assert out["tau_long_params"]["value"] == pytest.approx(1.0)
    assert out["pair_diff_short"]["value"] == pytest.approx(0.15, abs=0.03)
    assert out["pair_diff_long"]["value"] == pytest.approx(-0.15, abs=0.03)
    assert out["paradox"] and out["pair_flips"]
    assert out["tau_short_long_per_seed"] == [-1.0, -1.0, -1.0]
    text = paradox.markdown(out, 50, 400, 3, ("s", "big"), "setting")
    assert "Paradox" in text and "**yes**" in text


def test_chance_level_short_runs_rank_nothing():
    rates = np.zeros((4, 3, 2)) + 0.5
    rates[:, :, 1] = np.array([0.70, 0.72, 0.74, 0.76])[:, None]
    out = paradox.analyse(None, _correct(rates, seed=1), [1, 2, 3, 4], ["a", "b", "c", "d"],
                          ("a", "d"), resamples=200)
    lo, hi = out["tau_short_long"]["ci95"]
    assert lo < 0 < hi  # a coin-flip ranking agrees with nothing
    assert not out["paradox"]


def test_paradox_params_are_checked():
    problems = ParadoxStudyParams(hidden_size=[100], steps=[400, 50], seeds=[0]).check()
    assert any("hidden_size: 100 is not a multiple" in x for x in problems)
    assert any("steps: got [400, 50]" in x for x in problems)
    assert any("seeds: got [0]" in x for x in problems)
