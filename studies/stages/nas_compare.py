"""Study stage ``nas_compare``: NAS strategies at the pipeline's budget
(``nas.population x nas.generations`` trials) on the table of stage ``nas_table``, each run
``nas_study.seeds`` times with its own seed, against random search.

A trial is worth its architecture's table score when within the speed budget
(``nas.min_speedup``) and the worst within-budget score when not; regret is the best
within-budget score of the table minus the best found so far
(:mod:`distillery.studies.tabular`). The pipeline's own pick (``--arch``) is placed in the
table's ranking.

Deps: ``--table`` (stage nas_table), ``--arch`` (the pipeline's NAS winner).
Params: ``nas_study.*``; ``nas`` of ``--main-params``.
Outs: ``--report`` (Markdown), ``--png``. Plots: ``--curves`` (CSV: mean and 25-75% regret
per strategy and trial). Metrics: ``--metrics``: per strategy final regret, share of runs
that found the best, trials to random's best.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from distillery.config.base import load_section
from distillery.config.nas import NasParams
from distillery.core.io import (
    Timer,
    atomic_path,
    read_json,
    run_main,
    stage_args,
    write_csv,
    write_json,
)
from distillery.measure import plots
from distillery.studies import tabular
from distillery.studies.params import NasStudyParams

logger = logging.getLogger("studies.nas_compare")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "table", "arch", "curves", "png", "metrics",
                                "report"], argv)
    s = load_section(args.params, "nas_study", NasStudyParams)
    p = load_section(args.main_params, "nas", NasParams)
    table = tabular.read_nas_table(args.table, p.min_speedup)
    strategies = list(dict.fromkeys(["random", *s.strategies]))  # random first: the target
    runs: dict[str, list[dict]] = {name: [] for name in strategies}
    unique: dict[str, list[int]] = {name: [] for name in strategies}
    bar = tqdm(total=len(strategies) * s.seeds, desc="strategy runs")
    with Timer() as timer:
        for seed in range(s.seeds):
            random_best = None
            for name in strategies:
                genomes = tabular.replay_nas(table, name, p.seed + seed, p)
                values = [table.value(g) for g in genomes]
                random_best = random_best if random_best is not None else max(values)
                runs[name].append({"values": values, "table_best": table.best,
                                   "random_best": random_best})
                unique[name].append(len({tuple(sorted(g.items())) for g in genomes}))
                bar.update()
    bar.close()
    summary = tabular.summarize({n: runs[n] for n in s.strategies})
    for r in summary:
        finals = [tabular.best_so_far(x["values"])[-1] for x in runs[r["sampler"]]]
        r["found_best"] = float(np.mean([f >= table.best - 1e-12 for f in finals]))
        r["unique_mean"] = float(np.mean(unique[r["sampler"]]))
        if r["sampler"] != "random":
            vs = tabular.versus(runs, r["sampler"])
            r["regret_vs_random"], r["regret_vs_random_ci95"] = vs["diff"], vs["ci95"]
    curve_rows = tabular.curves({n: runs[n] for n in s.strategies})
    write_csv(args.curves, curve_rows)
    plots.regret_curves(curve_rows, args.png,
                        title=f"NAS strategies on the {len(table.rows)}-architecture table")
    within = sorted((r for r in table.rows if table.within(r)), key=lambda r: -r["score"])
    pick = table.row(read_json(args.arch)["genome"])
    rank = 1 + sum(r["score"] > pick["score"] for r in within)
    write_json(args.metrics, {
        **{f"{r['sampler']}_{k}": v for r in summary for k, v in r.items() if k != "sampler"},
        "table_size": len(table.rows), "within_budget": len(within),
        "table_best": table.best, "pipeline_pick_score": pick["score"],
        "pipeline_pick_rank": rank, "duration_s": round(timer.seconds, 2)})
    budget = p.population * p.generations
    lines = [f"Every one of the {len(table.rows)} architectures of `nas.search_space` scored "
             f"once by the pipeline's proxy; {len(within)} are within the speed budget "
             f"(>= {p.min_speedup}x the int8 teacher end to end), the best of them at "
             f"{table.best:.4f}. Each strategy ran {s.seeds} times at the pipeline's budget "
             f"({budget} trials, population {p.population}).", "",
             "| strategy | runs | distinct architectures trained (mean) | final regret "
             "(median / mean, points) | minus random's (mean, 95% interval over runs) | "
             "runs that found the best | trials to random's best (median) | evaluations "
             "within 1 point of the best |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in summary:
        vs = ("" if r["sampler"] == "random" else
              f"{100 * r['regret_vs_random']:+.2f} [{100 * r['regret_vs_random_ci95'][0]:+.2f}, "
              f"{100 * r['regret_vs_random_ci95'][1]:+.2f}]")
        lines.append(f"| {r['sampler']} | {r['runs']} | {r['unique_mean']:.1f} | "
                     f"{100 * r['final_regret']:.2f} / {100 * r['final_regret_mean']:.2f} | "
                     f"{vs} | {r['found_best']:.0%} | {r['trials_to_random_best']:.1f} | "
                     f"{r['share_near_best']:.0%} |")
    lines += ["", f"The pipeline's pick ({pick['num_hidden_layers']} x "
              f"{pick['hidden_size']}, FFN {pick['intermediate_size']}) scores "
              f"{pick['score']:.4f} in the table: rank {rank} of {len(within)} within the "
              "budget."]
    with atomic_path(args.report) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    logger.info("\n%s", "\n".join(lines))


if __name__ == "__main__":
    run_main(main)
