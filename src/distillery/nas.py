"""Evolutionary architecture search (elitism + mutation) with a random-search baseline.

A genome maps each gene of :data:`distillery.models.GENES` to one of its allowed values.
Every genome produced here is valid (``hidden_size % num_attention_heads == 0``): invalid
samples are repaired, never rejected. The search is deterministic for a fixed seed and a
deterministic fitness.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from distillery.models import GENES, repair_genome

logger = logging.getLogger(__name__)

Genome = dict[str, int]


@dataclass
class Candidate:
    """One evaluated architecture."""

    generation: int
    genome: Genome
    fitness: float
    info: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"generation": self.generation, **self.genome, "fitness": self.fitness, **self.info}


def key(genome: Genome) -> tuple[int, ...]:
    return tuple(genome[g] for g in GENES)


def random_genome(space: dict[str, list[int]], rng: random.Random) -> Genome:
    """Sample every gene uniformly, then repair."""
    return repair_genome({g: rng.choice(space[g]) for g in GENES}, space)


def mutate(genome: Genome, space: dict[str, list[int]], rate: float, rng: random.Random) -> Genome:
    """Resample each gene with probability ``rate``; at least one gene always changes
    when it has another allowed value, so a child differs from its parent."""
    child = dict(genome)
    for g in GENES:
        if rng.random() < rate:
            child[g] = rng.choice(space[g])
    child = repair_genome(child, space)
    if child != genome:
        return child
    # Force one change that survives repair (repair can undo a head-count change).
    options = [(g, v) for g in GENES for v in space[g] if v != genome[g]]
    rng.shuffle(options)
    for g, v in options:
        forced = repair_genome({**genome, g: v}, space)
        if forced != genome:
            return forced
    return child  # a space with a single valid genome


def search(
    space: dict[str, list[int]],
    fitness: Callable[[Genome], tuple[float, dict[str, Any]]],
    strategy: Literal["evolution", "random"],
    population: int,
    generations: int,
    elite: int,
    mutation_rate: float,
    seed: int,
    on_candidate: Callable[[Candidate], None] | None = None,
) -> list[Candidate]:
    """Run the search and return every candidate evaluated, in order.

    Evolution: generation 0 is random; each later one keeps the ``elite`` best of all seen
    so far and fills the rest with mutated children of parents drawn by binary tournament.
    Random: ``population * generations`` random genomes. A genome seen before reuses its
    fitness (no retraining) but is still recorded in the history of its generation.
    """
    rng = random.Random(seed)
    cache: dict[tuple[int, ...], tuple[float, dict[str, Any]]] = {}
    history: list[Candidate] = []

    def evaluate(genome: Genome, gen: int) -> Candidate:
        k = key(genome)
        if k not in cache:
            cache[k] = fitness(genome)
        fit, info = cache[k]
        cand = Candidate(gen, genome, fit, dict(info))
        history.append(cand)
        if on_candidate:
            on_candidate(cand)
        return cand

    pop = [evaluate(random_genome(space, rng), 0) for _ in range(population)]
    for gen in range(1, generations):
        if strategy == "random":
            pop = [evaluate(random_genome(space, rng), gen) for _ in range(population)]
            continue
        ranked = sorted(_unique(history), key=lambda c: -c.fitness)
        nxt = [evaluate(c.genome, gen) for c in ranked[:elite]]
        while len(nxt) < population:
            a, b = rng.sample(pop, 2) if len(pop) > 1 else (pop[0], pop[0])
            parent = a if a.fitness >= b.fitness else b
            nxt.append(evaluate(mutate(parent.genome, space, mutation_rate, rng), gen))
        pop = nxt
    return history


def _unique(history: list[Candidate]) -> list[Candidate]:
    seen: dict[tuple[int, ...], Candidate] = {}
    for c in history:
        seen.setdefault(key(c.genome), c)
    return list(seen.values())


def best(history: list[Candidate]) -> Candidate:
    """Fittest candidate; ties go to the fewer parameters, then the earliest."""
    return max(history, key=lambda c: (c.fitness, -c.info.get("n_params", 0)))


@dataclass
class ProxyTask:
    """Fitness of a genome: validation score (``metric``) after a short proxy training run.

    ``fitness = score - params_penalty * encoder_params[M] - latency_penalty * latency[ms]``
    (encoder parameters exclude the embeddings; the latency term makes fitness noisy).
    """

    teacher: Any
    tokenizer: Any
    train: Any
    val: Any
    max_length: int
    steps: int
    batch_size: int
    lr: float
    init_from_teacher: bool = True
    params_penalty: float = 0.0
    latency_penalty: float = 0.0
    latency_repeats: int = 20
    metric: str = "accuracy"
    seed: int = 0

    def __call__(self, genome: Genome) -> tuple[float, dict[str, Any]]:
        from distillery import bench, evaluate, families, models, training
        from distillery.data import encode
        from distillery.io import Timer, seed_everything

        seed_everything(self.seed)
        student = families.build_student(genome, self.teacher, init=self.init_from_teacher)
        # The proxy ranks encoder shapes: the word-embedding table stays frozen (teacher
        # init or random), which also removes the costliest optimizer update of a step.
        models.freeze_word_embeddings(student)
        cfg = training.TrainConfig(
            lr=self.lr, batch_size=self.batch_size, max_length=self.max_length,
            steps=self.steps, seed=self.seed,
        )
        with Timer() as t:
            training.train(student, self.train, self.tokenizer, cfg, desc=None)
        acc = evaluate.evaluate(student, self.val, self.tokenizer, self.max_length, self.metric)
        first = self.val.subset(range(min(8, len(self.val))))
        feeds = [
            encode(self.tokenizer, [t], None if first.pairs is None else [first.pairs[i]],
                   self.max_length, padding=False, return_tensors="np")
            for i, t in enumerate(first.texts)
        ]
        latency = bench.torch_latency_ms(student, feeds, warmup=3, repeats=self.latency_repeats)
        n_params = models.count_params(student)
        n_encoder = families.encoder_params(student)
        fit = acc - self.params_penalty * n_encoder / 1e6 - self.latency_penalty * latency
        info = {"score": acc, "n_params": n_params, "encoder_params": n_encoder,
                "latency_ms": latency,
                "train_s": round(t.seconds, 2)}
        logger.info("genome %s: acc=%.4f params=%.2fM latency=%.2fms", genome, acc,
                    n_params / 1e6, latency)
        return fit, info
