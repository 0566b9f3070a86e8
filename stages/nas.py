"""Stage ``nas``: search of the student architecture with proxy training.

``nas.strategy`` proposes genomes (layers, hidden size, heads, FFN size); each is scored by a
short proxy training run of a student initialised from the fine-tuned teacher, as the final
student is (``nas.proxy: kd`` also trains it by distillation from that teacher), and timed as
the pipeline ships it: int8 ONNX (``export.int8_recipe``), text in, label out, beside the
teacher's int8 file. The winner is the best-scoring candidate within the speed budget
``nas.min_speedup`` (and ``nas.max_params`` / ``nas.max_latency_ms``). Trials live in an
Optuna study on a journal kept between runs (``resume/`` beside ``--trials``, out of reach of
``dvc exp run``'s checkout: :mod:`distillery.search.resume`) or on ``nas.storage`` (a
database, e.g. ``env:DISTILLERY_STORAGE``): a killed run resumes, a genome is trained once
however often it is proposed, and ``nas.workers`` processes share the study.

Deps: ``--data`` (prepared splits), ``--teacher`` (the fine-tuned teacher of stage hpo),
``--logits`` (its logits, stage ``label``: the KD proxy's targets).
Params: ``teacher.*``, ``task.metric`` (the proxy score), ``nas.*``, ``distill.alpha`` and
``distill.temperature`` (the KD proxy), ``export.int8_recipe`` and ``export.opset`` (how
candidates are timed), ``benchmark.threads``.
Outs: ``--out`` (best architecture JSON: the genome and its proxy scores), ``--trials`` (a
copy of the kept journal).
Plots: ``--history`` (CSV, one row per candidate), ``--png``.
Metrics: ``--metrics``: best genome, its proxy score / params / latency, duration.
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
from distillery.measure import plots
from distillery.modeling import loading
from distillery.search import resume, runner
from distillery.teachers.causal import teacher as llm_teacher

logger = logging.getLogger("stages.nas")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "teacher", "logits", "trials", "out", "history", "png",
                                "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "nas", NasParams)
    d = load_section(args.params, "distill", DistillParams)
    metric = load_section(args.params, "task", TaskParams).metric
    ex = load_section(args.params, "export", ExportParams)
    threads = load_section(args.params, "benchmark", BenchmarkParams).threads
    llm_teacher.check(tp, d)  # e.g. a causal-LM teacher with student_init: teacher
    base = loading.student_base(d.student_init, d.student_model, args.teacher,
                                 d.student_revision)
    loading.check_teacher(base)
    kd = (d.alpha, d.temperature)
    same_experiment = {**dataclasses.asdict(p), **tp.experiment(), "metric": metric,
                       "data": fingerprint(args.data), "teacher": fingerprint(args.teacher),
                       "kd": kd if p.proxy == "kd" else None}
    if d.student_init != "teacher":
        same_experiment |= {"student_init": d.student_init, "student_model": d.student_model}
        if d.student_revision is not None:  # not the snapshot's path: the same on every machine
            same_experiment["student_revision"] = d.student_revision
    if p.min_speedup is not None:  # it shapes the fitness, so the trials
        same_experiment |= {"timing": (ex.int8_recipe, ex.opset, threads)}
    for volatile in ("generations", "workers", "storage", "max_params", "max_latency_ms"):
        same_experiment.pop(volatile)
    name = runner.study_name("nas", same_experiment)
    storage = p.storage or resume.kept(args.trials, name)  # not rolled back by dvc exp run
    study = runner.load(storage, name, nas.directions(p.strategy))
    resumed = runner.prepare(study, [], journal=runner.is_journal(storage))
    with Timer() as timer:
        runner.run_workers(nas.Worker(tp, p, metric, args.data, storage, name, args.teacher,
                                      args.logits, kd, base, d.student_init != "random",
                                      ex.int8_recipe, ex.opset, threads),
                           p.workers)
        if not p.storage:
            resume.publish(storage, args.trials)
    space = dataclasses.asdict(p.search_space)
    history = nas.candidates(runner.finished_trials(study), p.population, space)
    winner = nas.select(history, p.max_params, p.max_latency_ms, p.min_speedup)
    rows = [c.row() for c in history]
    write_csv(args.history, rows)
    timed = all(c.info["latency_ms"] == c.info["latency_ms"] for c in history)  # no NaN
    front = [c.row() for c in nas.pareto_front(history, "latency_ms" if timed else "n_params")]
    plots.nas_scatter(rows, args.png, winner.row(), metric, front, p.min_speedup)
    # Only deterministic fields: a rerun with the same seed must not invalidate `distill`.
    write_json(args.out, {"genome": winner.genome, "fitness": winner.fitness,
                          "metric": metric, "score": winner.info["score"],
                          "n_params": winner.info["n_params"]})
    write_json(args.metrics, {
        **{f"best_{k}": v for k, v in winner.genome.items()},
        "metric": metric, "strategy": p.strategy, "best_score": winner.info["score"],
        "best_n_params": winner.info["n_params"],
        "best_latency_ms": round(winner.info["latency_ms"], 3),
        "best_speedup": round(winner.info["speedup"], 3), "min_speedup": p.min_speedup,
        "n_within_budget": sum(p.min_speedup is None or c.info["speedup"] >= p.min_speedup
                               for c in history),
        "best_fitness": winner.fitness,
        "n_candidates": len(history), "n_unique": len({nas.key(c.genome) for c in history}),
        "n_pareto": len(front), "proxy": p.proxy,
        "n_resumed": resumed["finished"],
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("best architecture %s (%s)", winner.genome, winner.info)


if __name__ == "__main__":
    run_main(main)
