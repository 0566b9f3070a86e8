"""Study stage ``hpo_compare``: every sampler on the HPO table, ``hpo_study.seeds`` times.

Deps: ``--table`` (from ``hpo_table``).
Params: ``hpo_study.*``; ``hpo`` of ``--main-params`` (the search space).
Plots: ``--curves`` (CSV: mean best-so-far regret per sampler and trial, 25-75% band), ``--png``.
Metrics: ``--metrics``: per sampler final regret, trials to reach random search's best,
share of evaluations near the best; ``--report`` (markdown table).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from tqdm.auto import tqdm

from distillery.config.base import load_section
from distillery.config.hpo import HpoParams
from distillery.core.io import Timer, atomic_path, run_main, stage_args, write_csv, write_json
from distillery.measure import plots
from distillery.studies import tabular
from distillery.studies.params import HpoStudyParams
from distillery.teachers import hpo

logger = logging.getLogger("studies.hpo_compare")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "table", "curves", "png", "metrics", "report"],
                      argv)
    s = load_section(args.params, "hpo_study", HpoStudyParams)
    # the LoRA space hpo_table scored
    space = hpo.search_space(dataclasses.replace(
        load_section(args.main_params, "hpo", HpoParams), method=["lora"], head_lr=None))
    full = tabular.read_table(args.table, space)
    samplers = list(dict.fromkeys(["random", *s.samplers]))  # random first: the target
    runs: dict[str, list[dict]] = {name: [] for name in samplers}
    bar = tqdm(total=len(samplers) * s.seeds, desc="sampler runs")
    with Timer() as timer:
        for seed in range(s.seeds):
            table = full.subset(s.subset, s.seed + seed)
            random_best = None
            for name in samplers:
                values = tabular.replay(table, name, s.seed + seed, s.budget, s.n_initial)
                random_best = random_best if random_best is not None else max(values)
                runs[name].append({"values": values, "table_best": table.best,
                                   "random_best": random_best})
                bar.update()
    bar.close()
    summary = tabular.summarize({n: runs[n] for n in s.samplers})
    curve_rows = tabular.curves({n: runs[n] for n in s.samplers})
    write_csv(args.curves, curve_rows)
    plots.regret_curves(curve_rows, args.png)
    per_sampler = {f"{r['sampler']}_{k}": v for r in summary for k, v in r.items()
                   if k != "sampler"}
    write_json(args.metrics, {**per_sampler, "table_size": len(full.configs),
                              "duration_s": round(timer.seconds, 2)})
    lines = ["| sampler | runs | final regret (median, points) | trials to random's "
             f"{s.budget}-trial best (median) | runs reaching it | evaluations within 1 point "
             "of the best |", "|---|---:|---:|---:|---:|---:|"]
    for r in summary:
        lines.append(f"| {r['sampler']} | {r['runs']} | {100 * r['final_regret']:.2f} | "
                     f"{r['trials_to_random_best']:.1f} | {r['reached_random_best']:.0%} | "
                     f"{r['share_near_best']:.0%} |")
    with atomic_path(args.report) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    logger.info("\n%s", "\n".join(lines))


if __name__ == "__main__":
    run_main(main)
