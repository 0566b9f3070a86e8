"""The KD ablation's bookkeeping: each variant's params, and contrasts whose mean difference
and interval come from the runs' predictions."""

from __future__ import annotations

import numpy as np
import pytest

from distillery.config.distill import DistillParams
from distillery.studies import ablation
from distillery.studies.params import KdStudyParams


def test_variant_params_switch_kd_off_and_on():
    base = DistillParams()
    no_kd = ablation.variant_params(base, "no_kd", seed=3, epochs=1.5)
    assert (no_kd.alpha, no_kd.hidden_weight, no_kd.attention_weight) == (1.0, 0.0, 0.0)
    assert (no_kd.seed, no_kd.epochs) == (3, 1.5)
    logits = ablation.variant_params(base, "logits", 0, 2.0)
    assert logits.alpha == base.alpha and logits.hidden_weight == 0.0
    full = ablation.variant_params(base, "layer_wise", 0, 2.0)
    assert (full.hidden_weight, full.attention_weight) == (base.hidden_weight,
                                                           base.attention_weight)


def test_summary_of_a_clear_and_of_no_difference():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 800)

    def run(p_right):
        return np.where(rng.random(800) < p_right, labels, 1 - labels)

    preds = {"no_kd": [run(0.7), run(0.7)], "logits": [run(0.85), run(0.85)],
             "layer_wise": [run(0.85), run(0.85)]}
    s = ablation.summarise(labels, preds, 2, "accuracy", resamples=300)
    clear = s["contrasts"]["logits - no_kd"]
    means = {v: np.mean([(p == labels).mean() for p in ps]) for v, ps in preds.items()}
    assert clear["diff"] == pytest.approx(means["logits"] - means["no_kd"], abs=1e-6)
    assert clear["distinguishable"] and clear["ci95"][0] > 0.08
    same = s["contrasts"]["layer_wise - logits"]
    assert not same["distinguishable"] and same["ci95"][0] < 0 < same["ci95"][1]
    assert s["variants"]["no_kd"]["min"] <= s["variants"]["no_kd"]["mean"] \
        <= s["variants"]["no_kd"]["max"]
    text = ablation.markdown(s, "accuracy", 2.0, 1250)
    assert "| logits - no_kd |" in text and "2 epochs (1250 steps)" in text


def test_study_params_are_checked():
    problems = KdStudyParams(variants=["no_kd", "tinybert"], seeds=[0]).check()
    assert any("'tinybert' is not one of" in x for x in problems)
    assert any("seeds: got [0]" in x for x in problems)


def test_grid_contrasts_against_the_pipelines_cell():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 600)
    good = [np.where(rng.random(600) < 0.9, labels, 1 - labels) for _ in range(2)]
    bad = [np.where(rng.random(600) < 0.6, labels, 1 - labels) for _ in range(2)]
    ref = ablation.cell(0.5, 2.0)
    preds = {ref: good, ablation.cell(0.2, 1.0): bad}
    s = ablation.summarise(labels, preds, 2, "accuracy", resamples=200,
                           contrasts=[(ablation.cell(0.2, 1.0), ref)])
    (name, c), = s["contrasts"].items()
    assert name == "alpha=0.2 T=1 - alpha=0.5 T=2"
    assert c["distinguishable"] and c["ci95"][1] < -0.2
    text = ablation.grid_markdown(s, "accuracy", 1.0, 625, ref, "layer_wise")
    assert "| alpha=0.2 T=1 - alpha=0.5 T=2 |" in text and "own setting: alpha=0.5 T=2" in text


def test_grid_params_are_checked():
    from distillery.studies.params import KdGridParams

    problems = KdGridParams(alpha=[1.5], temperature=[0.0], variant="no_kd", seeds=[0]).check()
    assert any("alpha: 1.5" in x for x in problems)
    assert any("temperature: 0.0" in x for x in problems)
    assert any("variant: 'no_kd'" in x for x in problems)
