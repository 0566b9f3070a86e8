"""Tests of ``distillery.search``: the space, every sampler on functions with known optima,
SOO/BaMSOO on integer and log dimensions, and the runner (duplicates, resume after a real
kill, two workers on one study, determinism)."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from distillery.search import SAMPLERS, Dim, Space, make_sampler, runner
from distillery.search.bamsoo import BaMSOO
from distillery.search.soo import SOO
from tests.unit.search_toys import (
    BRANIN,
    BRANIN_MAX,
    HARTMANN6,
    HARTMANN6_MAX,
    SlowWorker,
    branin,
    hartmann6,
)

MIXED = Space((Dim("lr", 1e-4, 1e-1, log=True), Dim("rank", 1, 64, log=True, integer=True),
               Dim("dropout", 0.0, 0.5)))


def run(name: str, space: Space, f, n: int, seed: int = 0, n_initial: int = 5,
        storage: str | None = None) -> optuna.Study:
    if storage is None:
        sampler, design = make_sampler(name, space, seed, n_initial)
        study = optuna.create_study(direction="maximize", sampler=sampler)
    else:
        study, design = runner.open_study(storage, "s", name, space, seed, n_initial)
    runner.prepare(study, design, journal=True)
    runner.optimize(study, space, f, n, desc=None)
    return study


# --------------------------------------------------------------------------- space


@pytest.mark.parametrize(("u", "expected"), [
    ([0.0] * 3, {"lr": 1e-4, "rank": 1, "dropout": 0.0}),
    ([1.0] * 3, {"lr": 1e-1, "rank": 64, "dropout": 0.5}),
    ([0.5] * 3, {"lr": 10 ** -2.5, "rank": 8, "dropout": 0.25}),  # log midpoints
])
def test_from_unit_maps_log_and_integer_dimensions(u, expected):
    params = MIXED.from_unit(u)
    assert params == pytest.approx(expected)
    assert isinstance(params["rank"], int)
    assert MIXED.to_unit(params) == pytest.approx(u)


def test_integer_cells_narrower_than_a_step_are_not_split():
    d = Dim("k", 1, 3, integer=True)
    assert d.distinct(0.0, 1.0)
    assert not d.distinct(0.26, 0.74)  # every point rounds to 2


def test_log_dimension_needs_a_positive_low_end():
    with pytest.raises(ValueError, match="above 0"):
        Dim("lr", 0.0, 1.0, log=True)


@pytest.mark.parametrize("n", [2, 5, 8])
def test_latin_hypercube_is_stratified_and_seeded(n):
    points = MIXED.latin_hypercube(n, seed=0)
    units = np.stack([MIXED.to_unit(p) for p in points])
    for dim in (0, 2):  # continuous dimensions: each of the n bins hit exactly once
        assert sorted(int(u * n) for u in units[:, dim]) == list(range(n))
    assert points == MIXED.latin_hypercube(n, seed=0) != MIXED.latin_hypercube(n, seed=1)
    assert MIXED.latin_hypercube(0, seed=0) == []


def test_unknown_sampler_lists_the_known_ones():
    with pytest.raises(ValueError, match="gp, soo, bamsoo, tpe, random"):
        make_sampler("cmaes", MIXED, 0)


# --------------------------------------------------------------------------- known optima


@pytest.mark.parametrize(("name", "n", "gap"), [
    ("soo", 30, 0.1), ("bamsoo", 30, 0.1), ("gp", 30, 0.01),
])
def test_branin_found_within_gap(name, n, gap):
    study = run(name, BRANIN, branin, n)
    assert BRANIN_MAX - study.best_value < gap


def test_hartmann6_bamsoo_reaches_with_60_evaluations_what_soo_needs_200_for():
    soo_60 = run("soo", HARTMANN6, hartmann6, 60).best_value
    soo_200 = run("soo", HARTMANN6, hartmann6, 200).best_value
    bamsoo_60 = run("bamsoo", HARTMANN6, hartmann6, 60).best_value
    assert HARTMANN6_MAX - soo_200 < 0.15
    assert HARTMANN6_MAX - bamsoo_60 < 0.15
    assert HARTMANN6_MAX - soo_60 > 0.5  # the GP is what saves the evaluations


def test_hartmann6_gp_bo():
    assert HARTMANN6_MAX - run("gp", HARTMANN6, hartmann6, 40).best_value < 0.1


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_baselines_run_on_the_same_interface(name):
    study = run(name, MIXED, lambda p: -abs(math.log10(p["lr"]) + 2), 12)
    assert len(runner.finished_trials(study)) == 12


def test_gp_proposals_after_the_design_concentrate_near_the_optimum():
    space = Space((Dim("x", 0.0, 1.0),))

    def quadratic(p):
        return -(p["x"] - 0.7) ** 2

    for_gp = [t.params["x"] for t in runner.finished_trials(run("gp", space, quadratic, 12,
                                                                 n_initial=4))[4:]]
    for_random = [t.params["x"] for t in runner.finished_trials(run("random", space, quadratic,
                                                                     12))[4:]]
    assert np.median(np.abs(np.array(for_gp) - 0.7)) < 0.03
    assert np.median(np.abs(np.array(for_random) - 0.7)) > 0.1


# --------------------------------------------------------------------------- SOO / BaMSOO


@pytest.mark.parametrize("name", ["soo", "bamsoo"])
def test_partition_samplers_on_integer_and_log_dimensions(name):
    def f(p):  # optimum at lr = 1e-2 (log middle of the lr range is 10**-2.5), rank = 16
        return -(math.log10(p["lr"]) + 2) ** 2 - (math.log2(p["rank"]) - 4) ** 2 - p["dropout"]

    study = run(name, MIXED, f, 60)
    best = study.best_params
    assert abs(math.log2(best["rank"]) - 4) < 0.5 and abs(math.log10(best["lr"]) + 2) < 0.3
    assert study.best_value > -0.3
    assert all(isinstance(t.params["rank"], int) for t in study.trials)


@pytest.mark.parametrize("name", ["soo", "bamsoo"])
def test_exhausted_integer_space_runs_each_configuration_once(name):
    space = Space((Dim("k", 1, 3, integer=True),))
    calls = []
    study = run(name, space, lambda p: calls.append(p["k"]) or -abs(p["k"] - 2), 6)
    assert sorted(calls) == [1, 2, 3]  # later proposals repeat a configuration: not rerun
    cached = [t for t in study.trials if "cached" in t.user_attrs]
    assert len(cached) == 3 and len(study.trials) == 6


def test_soo_expands_every_depth_and_bamsoo_skips_cells():
    soo, bam = SOO(BRANIN), BaMSOO(BRANIN)
    for algo in (soo, bam):
        gen = algo.run()
        x = next(gen)
        for _ in range(60):
            x = gen.send(branin(BRANIN.from_unit(x)))
    assert soo.n_nodes == len(soo.values)  # SOO evaluates every cell
    assert bam.n_skipped > 0 and bam.n_nodes > len(bam.values)
    # the cells BaMSOO evaluated are better on average: fewer wasted evaluations
    assert np.median(bam.values) > np.median(soo.values)


@pytest.mark.parametrize("name", ["soo", "bamsoo", "random", "gp"])
def test_resumed_study_continues_as_one_uninterrupted_run(tmp_path, name):
    straight = [t.params for t in runner.finished_trials(
        run(name, BRANIN, branin, 14, n_initial=4, storage=str(tmp_path / "a.journal")))]
    run(name, BRANIN, branin, 7, n_initial=4, storage=str(tmp_path / "b.journal"))
    resumed = run(name, BRANIN, branin, 14, n_initial=4, storage=str(tmp_path / "b.journal"))
    params = [t.params for t in runner.finished_trials(resumed)]
    assert len(params) == 14
    if name in ("soo", "bamsoo"):  # the tree is rebuilt from storage: identical proposals
        assert params == straight
    else:  # the first half is the same; new trials are not repeats of finished ones
        assert params[:7] == straight[:7]
    assert len({BRANIN.key(p) for p in params}) == 14


# --------------------------------------------------------------------------- runner


def test_same_seed_one_worker_same_trials(tmp_path):
    a = run("tpe", BRANIN, branin, 10, seed=3, storage=str(tmp_path / "a.journal"))
    b = run("tpe", BRANIN, branin, 10, seed=3, storage=str(tmp_path / "b.journal"))
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_prepare_fails_stale_running_trials_and_requeues_their_design_point(tmp_path):
    storage = str(tmp_path / "s.journal")
    study, design = runner.open_study(storage, "s", "gp", BRANIN, 0, 3)
    runner.prepare(study, design, journal=True)
    study.ask()  # a killed process took the first design point and died
    study, _ = runner.open_study(storage, "s", "gp", BRANIN, 0, 3)
    assert runner.prepare(study, design, journal=True) == {"finished": 0, "stale": 1}
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(TrialState.FAIL) == 1 and states.count(TrialState.WAITING) == 3
    runner.optimize(study, BRANIN, branin, 3, desc=None)
    done = {BRANIN.key(t.params) for t in runner.finished_trials(study)}
    assert done == {BRANIN.key(p) for p in design}


def test_kill_during_search_then_resume_repeats_no_finished_trial(tmp_path):
    storage, log = str(tmp_path / "s.journal"), tmp_path / "events.log"
    worker = SlowWorker(storage, "s", "soo", 8, str(log), delay=0.3)
    script = ("import sys; from tests.unit.search_toys import SlowWorker; "
              f"SlowWorker(*{(worker.storage, 's', 'soo', 8, str(log), 0.3)!r})(0)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    deadline = time.time() + 60
    while time.time() < deadline:
        if log.exists() and log.read_text().count("end") >= 3 and \
                log.read_text().splitlines()[-1].startswith("start"):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = log.read_text().splitlines()
    finished = {line.split(" ", 2)[2] for line in first if line.startswith("end")}
    assert 3 <= len(finished) < 8 and first[-1].startswith("start")  # killed mid-trial

    # rerun as the stage does: reopen, fail the dead trial, run the rest
    study, design = runner.open_study(storage, "s", "soo", BRANIN, 0)
    assert runner.prepare(study, design, journal=True) == {"finished": len(finished), "stale": 1}
    worker(0)
    second = log.read_text().splitlines()[len(first):]
    rerun = {line.split(" ", 2)[2] for line in second if line.startswith("start")}
    assert not rerun & finished
    assert len(runner.finished_trials(study)) == 8


def test_two_workers_share_one_study(tmp_path):
    storage, log = str(tmp_path / "s.journal"), tmp_path / "events.log"
    study, design = runner.open_study(storage, "s", "random", BRANIN, 0)
    runner.prepare(study, design, journal=True)
    runner.run_workers(SlowWorker(storage, "s", "random", 8, str(log), delay=0.3), workers=2)
    trials = runner.finished_trials(study)
    assert len(trials) == 8
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both did work
    starts = [line.split(" ", 2)[2] for line in log.read_text().splitlines()
              if line.startswith("start")]
    assert len(starts) == len(set(starts)) == 8


def test_failing_worker_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match="worker-0, worker-1 failed"):
        runner.run_workers(SlowWorker("/nonexistent/dir\0/x", "s", "random", 2, "/dev/null"),
                           workers=2)


def test_registry_names_match_the_params_choices():
    from typing import get_args, get_type_hints

    from distillery.config.hpo import HpoParams

    assert set(get_args(get_type_hints(HpoParams)["sampler"])) == set(SAMPLERS)


# --------------------------------------------------------------------------- tabular study


def test_tabular_summary_on_a_known_table():
    from distillery.studies import tabular

    space = Space((Dim("x", 0.0, 1.0),))
    xs = [i / 19 for i in range(20)]
    table = tabular.Table(space, [{"x": x} for x in xs], [-(x - 0.7) ** 2 for x in xs])
    assert table.nearest({"x": 0.71}) == -(xs[13] - 0.7) ** 2
    runs = {name: [{"values": tabular.replay(table, name, seed, 10, 3),
                    "table_best": table.best, "random_best": None} for seed in range(3)]
            for name in ("random", "gp")}
    for name in runs:
        for i, r in enumerate(runs[name]):
            r["random_best"] = max(runs["random"][i]["values"])
    rows = {r["sampler"]: r for r in tabular.summarize(runs)}
    assert rows["random"]["reached_random_best"] == 1.0
    assert rows["gp"]["final_regret"] <= rows["random"]["final_regret"]
    assert 0 <= rows["gp"]["share_near_best"] <= 1
    curve = [r for r in tabular.curves(runs) if r["sampler"] == "gp"]
    assert [r["trial"] for r in curve] == list(range(1, 11))
    assert tabular.first_reaching(np.array([0.1, 0.3, 0.3]), 0.3) == 2
    assert tabular.first_reaching(np.array([0.1]), 0.3) is None


def test_rank_agreement_of_proxies():
    from distillery.studies import calibration

    assert calibration.rank_agreement([1, 2, 3], [10, 20, 30])["kendall_tau"] == 1.0
    assert calibration.rank_agreement([3, 2, 1], [10, 20, 30])["spearman_rho"] == -1.0
    archs = calibration.architectures({"num_hidden_layers": [1, 2], "hidden_size": [32],
                                       "num_attention_heads": [4], "intermediate_size": [8, 16]},
                                      k=10, seed=0)
    assert len(archs) == 4  # the whole space, each genome once


# --------------------------------------------------------------------------- pruning


def _learning_curve(params, report):
    """A trial that reports 6 rising validation scores; its level is its ``x1`` (a hopeless
    configuration stays low all along)."""
    level = params["x1"] / 10
    for step in range(1, 7):
        report(level * step / 6, step)
    return level


@pytest.mark.parametrize("pruner", ["median", "halving", "hyperband"])
def test_a_pruner_stops_hopeless_trials_and_they_count_toward_n_trials(tmp_path, pruner):
    space = Space((Dim("x1", 0.0, 10.0),))
    study, _ = runner.open_study(str(tmp_path / "s.journal"), "s", "random", space, 0,
                                 pruner=pruner, n_steps=6)
    for x1 in (9.0, 8.0, 9.5, 0.5, 0.2, 0.1):  # good ones first, then hopeless ones
        study.enqueue_trial({"x1": x1})
    runner.optimize(study, space, _learning_curve, 6, desc=None)
    trials = runner.ran_trials(study)
    assert len(trials) == 6
    pruned = [t.params["x1"] for t in trials if t.state == TrialState.PRUNED]
    assert sum(x1 < 1 for x1 in pruned) >= 2  # hopeless ones stopped ...
    if pruner == "median":  # ... and only those (successive halving also cuts the good 8.0)
        assert sorted(pruned) == [0.1, 0.2, 0.5]
    assert all(t.last_step < 6 for t in trials if t.state == TrialState.PRUNED)
    assert max(runner.finished_trials(study), key=lambda t: t.value).params["x1"] == 9.5


def test_an_objective_without_report_is_never_pruned(tmp_path):
    study, _ = runner.open_study(str(tmp_path / "s.journal"), "s", "random", BRANIN, 0,
                                 pruner="median", n_steps=6)
    runner.optimize(study, BRANIN, branin, 5, desc=None)
    assert len(runner.finished_trials(study)) == 5


@pytest.mark.parametrize("sampler", ["soo", "bamsoo"])
def test_samplers_that_cannot_prune_say_so_and_keep_working(tmp_path, sampler, caplog):
    space = Space((Dim("x1", 0.0, 10.0),))
    with caplog.at_level("INFO", logger="distillery.search.pruners"):
        study, _ = runner.open_study(str(tmp_path / "s.journal"), "s", sampler, space, 0,
                                     pruner="median", n_steps=6)
    assert f"sampler {sampler} cannot use pruned trials" in caplog.text
    assert isinstance(study.pruner, optuna.pruners.NopPruner)
    runner.optimize(study, space, _learning_curve, 6, desc=None)
    assert len(runner.finished_trials(study)) == 6  # nothing pruned
