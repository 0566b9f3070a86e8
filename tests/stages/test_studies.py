"""The opt-in studies' stages on tiny params: HPO table -> sampler comparison, proxy
calibration and the KD ablation, checking their outputs and that their numbers are
consistent."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from .conftest import load_stage

STUDY_PARAMS = {
    "hpo_study": {"n_configs": 5, "samplers": ["gp", "soo", "bamsoo", "tpe", "random"],
                  "seeds": 2, "budget": 6, "n_initial": 2, "subset": 0.8, "live_checks": 2,
                  "seed": 0},
    "proxy_study": {"n_archs": 3, "budgets": [2, 4], "proxies": ["ce", "kd"],
                    "reference_steps": 6, "seed": 0,
                    # its own space, unlike the pipeline's (1-2 layers, FFN 16 or 37)
                    "search_space": {"num_hidden_layers": [1], "hidden_size": [16, 32],
                                     "num_attention_heads": [2, 4], "intermediate_size": [24],
                                     "head_size": None}},
    "kd_study": {"variants": ["no_kd", "logits", "layer_wise"], "seeds": [0, 1], "epochs": 1.0,
                 "resamples": 200},
    "kd_grid": {"alpha": [0.2, 0.8], "temperature": [1.0, 4.0], "seeds": [0, 1],
                "variant": "logits", "epochs": 0.5, "resamples": 200},
    "nas_study": {"strategies": ["evolution", "regularized", "nsga2", "random"], "seeds": 5},
    "paradox_study": {"num_hidden_layers": [1, 2], "hidden_size": [16, 32], "head_size": 8,
                      "ffn_ratio": 2, "steps": [1, 3], "seeds": [0, 1], "batch_size": 8,
                      "lr": 1e-3, "pair": ["1x16", "2x32"], "workers": 1, "resamples": 100},
}


def _rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_studies_on_tiny_params(stage_dir):
    Path("study.yaml").write_text(yaml.safe_dump(STUDY_PARAMS))
    load_stage("data").main(["--out", "raw", "--metrics", "m/data.json"])
    load_stage("prepare").main(["--raw", "raw", "--out", "prep", "--metrics", "m/prepare.json",
                                "--class-counts", "m/class_counts.csv"])
    load_stage("hpo").main(["--data", "prep", "--trials", "j/hpo.journal", "--out", "teacher",
                            "--history", "h.csv", "--png", "h.png", "--metrics", "m/hpo.json",
                            "--curves", "c/hpo"])
    common = ["--params", "study.yaml", "--main-params", "params.yaml"]

    load_stage("hpo_table", "studies/stages").main(
        [*common, "--data", "prep", "--trials", "j/table.journal", "--out", "r/table.csv",
         "--metrics", "m/table.json"])
    table = _rows("r/table.csv")
    assert len(table) == 5 and set(table[0]) == {"lr", "rank", "alpha", "dropout",
                                                 "weight_decay", "score"}
    (kept,) = Path("j/resume").glob("hpo-table-*.journal")  # out of dvc exp run's checkout
    assert kept.read_bytes() == Path("j/table.journal").read_bytes()  # and published
    m = json.loads(Path("m/table.json").read_text())
    assert len(m["live_checks"]) == 2 and m["best"] == max(float(r["score"]) for r in table)

    load_stage("hpo_compare", "studies/stages").main(
        [*common, "--table", "r/table.csv", "--curves", "p/regret.csv", "--png", "p/regret.png",
         "--metrics", "m/compare.json", "--report", "r/compare.md"])
    curves = _rows("p/regret.csv")
    assert len(curves) == 5 * 6  # samplers x trials
    for name in ("gp", "soo", "bamsoo", "tpe", "random"):
        regret = [float(r["regret_mean"]) for r in curves if r["sampler"] == name]
        assert all(a >= b >= 0 for a, b in zip(regret, regret[1:], strict=False))  # monotone
    m = json.loads(Path("m/compare.json").read_text())
    assert 1 <= m["random_trials_to_random_best"] <= 6  # random reaches its own best
    assert "| bamsoo |" in Path("r/compare.md").read_text()
    assert Path("p/regret.png").stat().st_size > 0

    load_stage("label").main(["--data", "prep", "--teacher", "teacher", "--out", "logits",
                              "--metrics", "m/label.json"])
    load_stage("proxy_calibration", "studies/stages").main(
        [*common, "--data", "prep", "--teacher", "teacher", "--logits", "logits",
         "--out", "r/runs.csv",
         "--table", "p/tau.csv", "--png", "p/tau.png", "--metrics", "m/calib.json"])
    runs = _rows("r/runs.csv")
    assert len(runs) == 3 * (2 * 2 + 1)
    assert {(r["num_hidden_layers"], r["intermediate_size"]) for r in runs} == {("1", "24")}
    tau = _rows("p/tau.csv")
    assert {(r["proxy"], int(r["steps"])) for r in tau} == {("ce", 2), ("ce", 4), ("kd", 2),
                                                           ("kd", 4)}
    assert all(-1 <= float(r["kendall_tau"]) <= 1 for r in tau)
    assert json.loads(Path("m/calib.json").read_text())["n_archs"] == 3

    Path("arch.json").write_text(json.dumps({"genome": {
        "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
        "intermediate_size": 24}}))
    load_stage("kd_ablation", "studies/stages").main(
        [*common, "--data", "prep", "--arch", "arch.json", "--teacher", "teacher", "--logits",
         "logits", "--out", "r/kd.md", "--table", "p/kd.csv", "--png", "p/kd.png", "--metrics",
         "m/kd.json"])
    runs = _rows("p/kd.csv")
    assert [(r["variant"], r["seed"]) for r in runs] == [
        (v, s) for s in ("0", "1") for v in ("no_kd", "logits", "layer_wise")]
    assert {r["layer_wise"] for r in runs if r["variant"] == "layer_wise"} == {"True"}
    m = json.loads(Path("m/kd.json").read_text())
    assert set(m["contrasts"]) == {"logits - no_kd", "layer_wise - no_kd", "layer_wise - logits"}
    no_kd = [float(r["accuracy"]) for r in runs if r["variant"] == "no_kd"]
    assert m["variants"]["no_kd"]["mean"] == round(sum(no_kd) / 2, 6)
    for c in m["contrasts"].values():
        assert c["ci95"][0] <= c["diff"] <= c["ci95"][1] or c["ci95"][0] == c["ci95"][1]
    assert "| logits - no_kd |" in Path("r/kd.md").read_text()
    assert Path("p/kd.png").stat().st_size > 0

    load_stage("kd_grid", "studies/stages").main(
        [*common, "--data", "prep", "--arch", "arch.json", "--teacher", "teacher", "--logits",
         "logits", "--out", "r/grid.md", "--table", "p/grid.csv", "--png", "p/grid.png",
         "--metrics", "m/grid.json"])
    runs = _rows("p/grid.csv")
    cells = {(float(r["alpha"]), float(r["temperature"])) for r in runs}
    # the grid + the pipeline's own cell (distill.alpha 0.1, distill.temperature 2)
    assert cells == {(0.2, 1.0), (0.2, 4.0), (0.8, 1.0), (0.8, 4.0), (0.1, 2.0)}
    assert len(runs) == 5 * 2
    m = json.loads(Path("m/grid.json").read_text())
    assert set(m["contrasts"]) == {f"alpha={a:g} T={t:g} - alpha=0.1 T=2"
                                   for a, t in cells - {(0.1, 2.0)}}
    assert Path("p/grid.png").stat().st_size > 0


def test_nas_studies_on_tiny_params(stage_dir):
    """nas_table scores every architecture of the pipeline's space as stage nas would;
    nas_compare replays the strategies on it; nas_paradox trains students from scratch."""
    Path("study.yaml").write_text(yaml.safe_dump(STUDY_PARAMS))
    load_stage("data").main(["--out", "raw", "--metrics", "m/data.json"])
    load_stage("prepare").main(["--raw", "raw", "--out", "prep", "--metrics", "m/prepare.json",
                                "--class-counts", "m/class_counts.csv"])
    load_stage("hpo").main(["--data", "prep", "--trials", "j/hpo.journal", "--out", "teacher",
                            "--history", "h.csv", "--png", "h.png", "--metrics", "m/hpo.json",
                            "--curves", "c/hpo"])
    load_stage("label").main(["--data", "prep", "--teacher", "teacher", "--out", "logits",
                              "--metrics", "m/label.json"])
    common = ["--params", "study.yaml", "--main-params", "params.yaml"]
    load_stage("nas_table", "studies/stages").main(
        ["--main-params", "params.yaml", "--data", "prep", "--teacher", "teacher", "--logits",
         "logits", "--trials", "j/nas_table.journal", "--out", "r/nas_table.csv", "--metrics",
         "m/nas_table.json"])
    table = _rows("r/nas_table.csv")
    assert len(table) == 2 * 2 * 2  # layers x widths x FFN (heads tied to the width)
    assert all(int(r["hidden_size"]) == 8 * int(r["num_attention_heads"]) for r in table)
    assert all(float(r["speedup"]) > 0 and float(r["latency_ms"]) > 0 for r in table)
    (kept,) = Path("j/resume").glob("nas-table-*.journal")
    assert kept.read_bytes() == Path("j/nas_table.journal").read_bytes()
    m = json.loads(Path("m/nas_table.json").read_text())
    assert m["n_architectures"] == 8 and m["best_within_budget"] is not None

    load_stage("nas").main(["--data", "prep", "--teacher", "teacher", "--logits", "logits",
                            "--trials", "j/nas.journal", "--out", "arch.json", "--history",
                            "nas.csv", "--png", "nas.png", "--metrics", "m/nas.json"])
    # the same proxy, seed and teacher: the pipeline's candidates score as in the table
    by_genome = {tuple(r[g] for g in ("num_hidden_layers", "hidden_size",
                                      "intermediate_size")): float(r["score"]) for r in table}
    for r in _rows("nas.csv"):
        key = (r["num_hidden_layers"], r["hidden_size"], r["intermediate_size"])
        assert float(r["score"]) == by_genome[key]

    load_stage("nas_compare", "studies/stages").main(
        [*common, "--table", "r/nas_table.csv", "--arch", "arch.json", "--curves",
         "p/nas_regret.csv", "--png", "p/nas_regret.png", "--metrics", "m/nas_compare.json",
         "--report", "r/nas_compare.md"])
    curves = _rows("p/nas_regret.csv")
    assert len(curves) == 4 * 3 * 2  # strategies x (population x generations)
    for name in ("evolution", "regularized", "nsga2", "random"):
        regret = [float(r["regret_mean"]) for r in curves if r["sampler"] == name]
        assert all(a >= b >= 0 for a, b in zip(regret, regret[1:], strict=False))
    m = json.loads(Path("m/nas_compare.json").read_text())
    assert m["table_size"] == 8 and 1 <= m["pipeline_pick_rank"] <= m["within_budget"]
    assert "| evolution |" in Path("r/nas_compare.md").read_text()

    load_stage("nas_paradox", "studies/stages").main(
        [*common, "--data", "prep", "--teacher", "teacher", "--out", "r/paradox.md",
         "--table", "p/paradox.csv", "--png", "p/paradox.png", "--metrics", "m/paradox.json"])
    runs = _rows("p/paradox.csv")
    assert len(runs) == 4 * 2 * 2  # architectures x seeds x budgets
    m = json.loads(Path("m/paradox.json").read_text())
    assert -1 <= m["tau_short_long"]["value"] <= 1 and len(m["tau_short_long_per_seed"]) == 2
    assert "paradox" in m and "Kendall tau" in Path("r/paradox.md").read_text()
