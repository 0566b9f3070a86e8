"""Stage ``nas``: evolutionary search of the student architecture with proxy training.

Deps: ``--data`` (prepared splits), the teacher named by ``teacher.model``.
Params: ``teacher.*``, ``task.metric`` (the proxy score), ``nas.*``.
Outs: ``--out`` (best architecture JSON: the genome and its proxy scores).
Plots: ``--history`` (CSV, one row per candidate), ``--png``.
Metrics: ``--metrics``: best genome, its proxy score / params / latency, duration.
"""

from __future__ import annotations

import dataclasses
import logging

from tqdm.auto import tqdm

from distillery import models, nas, plots
from distillery.data import load_prepared
from distillery.io import Timer, run_main, seed_everything, stage_args, write_csv, write_json
from distillery.params import NasParams, TaskParams, TeacherParams, load_section

logger = logging.getLogger("stages.nas")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["data", "out", "history", "png", "metrics"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "nas", NasParams)
    metric = load_section(args.params, "task", TaskParams).metric
    models.check_teacher(tp.model)
    seed_everything(p.seed)
    splits, names = load_prepared(args.data)
    task = nas.ProxyTask(
        teacher=models.load_classifier(tp.model, names),
        tokenizer=models.load_tokenizer(tp.model), train=splits["train"], val=splits["val"],
        max_length=tp.max_length, steps=p.proxy_steps, batch_size=p.batch_size, lr=p.lr,
        init_from_teacher=p.init_from_teacher, params_penalty=p.params_penalty,
        latency_penalty=p.latency_penalty, latency_repeats=p.latency_repeats, metric=metric,
        seed=p.seed,
    )
    space = dataclasses.asdict(p.search_space)
    bar = tqdm(total=p.population * p.generations, desc="nas candidates")
    with Timer() as timer:
        history = nas.search(
            space, task, p.strategy, p.population, p.generations, p.elite, p.mutation_rate,
            p.seed, on_candidate=lambda c: bar.update(),
        )
    bar.close()
    winner = nas.best(history)
    rows = [c.row() for c in history]
    write_csv(args.history, rows)
    plots.nas_scatter(rows, args.png, winner.row(), metric)
    # Only deterministic fields: a rerun with the same seed must not invalidate `distill`.
    write_json(args.out, {"genome": winner.genome, "fitness": winner.fitness,
                          "metric": metric, "score": winner.info["score"],
                          "n_params": winner.info["n_params"]})
    write_json(args.metrics, {
        **{f"best_{k}": v for k, v in winner.genome.items()},
        "metric": metric, "best_score": winner.info["score"],
        "best_n_params": winner.info["n_params"],
        "best_latency_ms": round(winner.info["latency_ms"], 3),
        "best_fitness": winner.fitness,
        "n_candidates": len(history), "n_unique": len({nas.key(c.genome) for c in history}),
        "duration_s": round(timer.seconds, 2),
    })
    logger.info("best architecture %s (%s)", winner.genome, winner.info)


if __name__ == "__main__":
    run_main(main)
