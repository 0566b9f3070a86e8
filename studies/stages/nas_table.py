"""Study stage ``nas_table``: every architecture of the pipeline's ``nas.search_space`` scored
once, exactly as stage ``nas`` scores a candidate (the same proxy training, seed and teacher,
and the same timing: int8 ONNX, end to end, beside the teacher's int8 file). The table is the
ground truth that ``nas_compare`` replays the search strategies on.

Trials live in an Optuna journal kept out of ``dvc exp run``'s checkout
(:mod:`distillery.search.resume`) and copied to ``--trials`` at the end: a killed run resumes.

Deps: ``--data``, ``--teacher``, ``--logits`` (the pipeline's stages prepare, hpo, label).
Params: ``teacher``, ``task``, ``nas``, ``distill`` (the KD proxy and the student base),
``export.int8_recipe``, ``export.opset``, ``benchmark.threads`` of ``--main-params``.
Outs: ``--trials``, ``--out`` (CSV: genome, score, speed-up, latency, parameters).
Metrics: ``--metrics``: table size, how many are within the speed budget, the best of them.
"""

from __future__ import annotations

import dataclasses
import logging

from distillery import nas
from distillery.config.base import load_section
from distillery.config.benchmark import BenchmarkParams
from distillery.config.distill import DistillParams
from distillery.config.export import ExportParams
from distillery.config.nas import NasParams
from distillery.config.task import TaskParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import Timer, fingerprint, run_main, stage_args, write_csv, write_json
from distillery.modeling import loading
from distillery.search import resume, runner
from distillery.studies import tabular

logger = logging.getLogger("studies.nas_table")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["main-params", "data", "teacher", "logits", "trials", "out",
                                "metrics"], argv, params=False)
    main_params = args.main_params
    tp = load_section(main_params, "teacher", TeacherParams)
    p = load_section(main_params, "nas", NasParams)
    d = load_section(main_params, "distill", DistillParams)
    ex = load_section(main_params, "export", ExportParams)
    threads = load_section(main_params, "benchmark", BenchmarkParams).threads
    metric = load_section(main_params, "task", TaskParams).metric
    space = dataclasses.asdict(p.search_space)
    genomes = tabular.every_genome(space)
    # every genome once, in a fixed order; the budget decides nothing here
    fixed = dataclasses.replace(p, strategy="random", population=len(genomes), generations=1,
                                workers=1, storage=None)
    base = loading.student_base(d.student_init, d.student_model, args.teacher,
                                 d.student_revision)
    kd = (d.alpha, d.temperature)
    name = runner.study_name("nas-table", {
        "genomes": genomes, "nas": dataclasses.replace(fixed, population=0),
        "teacher": tp.experiment(), "metric": metric, "kd": kd, "base": base,
        "timing": (ex.int8_recipe, ex.opset, threads), "data": fingerprint(args.data),
        "teacher_files": fingerprint(args.teacher)})
    storage = resume.kept(args.trials, name)  # not rolled back by dvc exp run
    study = runner.load(storage, name)
    runner.prepare(study, genomes, journal=True)
    with Timer() as timer:
        nas.Worker(tp, fixed, metric, args.data, storage, name, args.teacher, args.logits,
                   kd, base, d.student_init != "random", ex.int8_recipe, ex.opset, threads)(0)
        resume.publish(storage, args.trials)
    history = nas.candidates(runner.finished_trials(study), len(genomes), space)
    rows = [{**c.genome, **{k: c.info[k] for k in ("score", "speedup", "latency_ms",
                                                      "reference_latency_ms", "n_params",
                                                      "train_s")}} for c in history]
    write_csv(args.out, rows)
    within = [r for r in rows if p.min_speedup is None or r["speedup"] >= p.min_speedup]
    best = max(within, key=lambda r: r["score"]) if within else None
    write_json(args.metrics, {
        "n_architectures": len(rows), "min_speedup": p.min_speedup,
        "n_within_budget": len(within), "best_within_budget": best,
        "best_overall": max(rows, key=lambda r: r["score"]),
        "duration_s": round(timer.seconds, 2)})


if __name__ == "__main__":
    run_main(main)
