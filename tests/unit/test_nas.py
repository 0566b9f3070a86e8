"""Tests of ``distillery.nas``: mutation, evolutionary / random search, caching, selection.

The search runs with a deterministic fake fitness (no training); one test runs the real
``ProxyTask`` on the tiny teacher for a few steps.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from distillery import nas
from distillery.modeling import families, loading
from distillery.modeling.loading import GENES
from tests.conftest import make_sentences

DEFAULT_SPACE = {  # the shape of params.yaml's nas.search_space (256 is divided by 4 only)
    "num_hidden_layers": [1, 2, 3, 4],
    "hidden_size": [192, 256, 384],
    "num_attention_heads": [4, 6, 12],
    "intermediate_size": [768, 1536],
}
ALL_VALID_SPACE = {  # every head count divides every hidden size
    "num_hidden_layers": [1, 2],
    "hidden_size": [32, 64],
    "num_attention_heads": [2, 4],
    "intermediate_size": [37],
}


def _valid_genomes(space):
    for values in itertools.product(*(space[g] for g in GENES)):
        genome = dict(zip(GENES, values, strict=True))
        if genome["hidden_size"] % genome["num_attention_heads"] == 0:
            yield genome


def _in_space(genome, space) -> bool:
    return (set(genome) == set(GENES) and all(genome[g] in space[g] for g in GENES)
            and genome["hidden_size"] % genome["num_attention_heads"] == 0)


class FakeFitness:
    """Deterministic, tie-free fitness that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, genome):
        self.calls.append(nas.key(genome))
        fit = (genome["num_hidden_layers"] + genome["hidden_size"] / 384
               + genome["num_attention_heads"] / 100 - genome["intermediate_size"] / 3000)
        n_params = genome["num_hidden_layers"] * genome["hidden_size"] * genome["intermediate_size"]
        return fit, {"n_params": n_params, "score": fit, "latency_ms": n_params / 1e6}


def _search(strategy="evolution", population=6, generations=4, elite=2, rate=0.5, seed=0,
            space=DEFAULT_SPACE, fitness=None, **kw):
    return nas.search(space, fitness or FakeFitness(), strategy, population, generations, seed,
                      elite=elite, mutation_rate=rate, sample_size=3, **kw)


def _by_generation(history):
    out: dict[int, list[nas.Candidate]] = {}
    for c in history:
        out.setdefault(c.generation, []).append(c)
    return out


# --------------------------------------------------------------------------- genomes


def test_random_genome_is_valid():
    rng = random.Random(0)
    genomes = [nas.random_genome(DEFAULT_SPACE, rng) for _ in range(200)]
    assert all(_in_space(g, DEFAULT_SPACE) for g in genomes)
    assert len({nas.key(g) for g in genomes}) > 20  # and actually random


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_mutate_is_always_valid(rate):
    for genome in _valid_genomes(DEFAULT_SPACE):
        for seed in range(10):
            child = nas.mutate(genome, DEFAULT_SPACE, rate, random.Random(seed))
            assert _in_space(child, DEFAULT_SPACE), (genome, child)


@pytest.mark.parametrize(
    "space",
    [
        ALL_VALID_SPACE,
        dict(ALL_VALID_SPACE, num_hidden_layers=[1], hidden_size=[64], intermediate_size=[37]),
        DEFAULT_SPACE,
    ],
    ids=["all-valid", "only-heads-movable", "default"],
)
@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_mutate_differs_from_parent(space, rate):
    for genome in _valid_genomes(space):
        for seed in range(20):
            child = nas.mutate(genome, space, rate, random.Random(seed))
            assert child != genome, (genome, seed)


def test_mutate_does_not_modify_the_parent():
    genome = {"num_hidden_layers": 2, "hidden_size": 384, "num_attention_heads": 6,
              "intermediate_size": 768}
    before = dict(genome)
    nas.mutate(genome, DEFAULT_SPACE, 1.0, random.Random(0))
    assert genome == before


def test_mutate_with_a_single_point_space_returns_that_point():
    space = {g: [v] for g, v in zip(GENES, (1, 64, 4, 37), strict=True)}
    genome = {g: space[g][0] for g in GENES}
    assert nas.mutate(genome, space, 0.5, random.Random(0)) == genome


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize("strategy", ["evolution", "regularized", "random"])
def test_search_records_population_times_generations(strategy):
    history = _search(strategy, population=5, generations=3)
    assert len(history) == 15
    assert Counter(c.generation for c in history) == {0: 5, 1: 5, 2: 5}
    assert all(_in_space(c.genome, DEFAULT_SPACE) for c in history)


@pytest.mark.parametrize("strategy", ["evolution", "regularized", "random"])
def test_search_is_deterministic_for_a_seed(strategy):
    def rows(seed):
        return [c.row() for c in _search(strategy, seed=seed)]

    assert rows(3) == rows(3)
    assert rows(3) != rows(4)


@pytest.mark.parametrize("elite", [1, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_evolution_never_loses_the_best(elite, seed):
    history = _search(population=6, generations=6, elite=elite, seed=seed)
    best_per_gen = [max(c.fitness for c in pop) for _, pop in
                    sorted(_by_generation(history).items())]
    assert best_per_gen == sorted(best_per_gen)
    assert best_per_gen[-1] == max(c.fitness for c in history)


@pytest.mark.parametrize("seed", range(4))
def test_elite_genomes_reappear_in_the_next_generation(seed):
    history = _search(population=6, generations=5, elite=2, seed=seed)
    gens = _by_generation(history)
    for g in range(1, 5):
        seen = [c for c in history if c.generation < g]
        unique = {nas.key(c.genome): c for c in reversed(seen)}  # first occurrence wins
        top = sorted(unique.values(), key=lambda c: -c.fitness)[:2]
        assert [c.genome for c in gens[g][:2]] == [c.genome for c in top], g


def test_random_strategy_is_plain_random_sampling():
    history = _search("random", population=4, generations=3, seed=11)
    expected = [nas.random_genome(DEFAULT_SPACE, random.Random(f"11-{n}")) for n in range(12)]
    assert [c.genome for c in history] == expected


def test_fitness_is_called_once_per_unique_genome():
    fitness = FakeFitness()
    history = _search(population=6, generations=5, fitness=fitness)
    calls = Counter(fitness.calls)
    assert max(calls.values()) == 1
    assert set(calls) == {nas.key(c.genome) for c in history}
    assert len(fitness.calls) < len(history)  # elites were re-recorded without retraining


def test_repeated_genomes_share_scores_but_not_info_dicts():
    history = _search(population=6, generations=3)
    first: dict[tuple[int, ...], nas.Candidate] = {}
    repeats = 0
    for c in history:
        k = nas.key(c.genome)
        if k in first:
            repeats += 1
            assert (c.fitness, c.info) == (first[k].fitness, first[k].info)
            assert c.info is not first[k].info
        first.setdefault(k, c)
    assert repeats > 0


def test_regularized_evolution_mutates_the_tournament_winner_of_the_last_population():
    history = _search("regularized", population=4, generations=4, seed=2)
    for n, child in enumerate(history[4:], start=4):
        rng = random.Random(f"2-{n}")
        alive = history[n - 4:n]  # the oldest member died when trial n - 1 was born
        parent = max(rng.sample(alive, 3), key=lambda c: c.fitness)
        assert child.genome == nas.mutate(parent.genome, DEFAULT_SPACE, 0.5, rng), n


def test_resumed_search_proposes_what_an_uninterrupted_one_would(tmp_path):
    from distillery.search import runner

    straight = _search(population=4, generations=4, seed=5)
    storage = str(tmp_path / "nas.journal")
    _search(population=4, generations=2, seed=5, study=runner.load(storage, "n"))
    fitness = FakeFitness()
    resumed = _search(population=4, generations=4, seed=5, fitness=fitness,
                      study=runner.load(storage, "n"))
    assert [c.row() for c in resumed] == [c.row() for c in straight]
    first_half = {nas.key(c.genome) for c in straight[:8]}
    assert not set(fitness.calls) & first_half  # no finished genome was trained again


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ValueError, match="evolution, regularized, nsga2, random"):
        _search("nsga3")


def test_search_with_population_one():
    history = _search(population=1, generations=3, elite=0)
    assert len(history) == 3


# --------------------------------------------------------------------------- selection


def _cand(gen, fitness, n_params=None, layers=1):
    info = {} if n_params is None else {"n_params": n_params}
    genome = {"num_hidden_layers": layers, "hidden_size": 64, "num_attention_heads": 4,
              "intermediate_size": 37}
    return nas.Candidate(gen, genome, fitness, info)


@pytest.mark.parametrize(
    ("candidates", "winner"),
    [
        ([_cand(0, 0.8, 100), _cand(1, 0.9, 900)], 1),          # fitness first
        ([_cand(0, 0.9, 500), _cand(1, 0.9, 100)], 1),          # tie: fewer parameters
        ([_cand(0, 0.9, 100, layers=1), _cand(1, 0.9, 100, layers=2)], 0),  # then earliest
        ([_cand(0, 0.7), _cand(1, 0.7, 10)], 0),                # missing n_params counts as 0
    ],
    ids=["fitness", "fewer-params", "earliest", "missing-params"],
)
def test_best_tie_break(candidates, winner):
    assert nas.best(candidates) is candidates[winner]


def test_candidate_row_is_flat_and_ordered():
    c = nas.Candidate(2, {"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 4,
                          "intermediate_size": 37}, 0.5, {"accuracy": 0.6})
    row = c.row()
    assert list(row) == ["generation", *GENES, "fitness", "accuracy"]
    assert row["generation"] == 2 and row["fitness"] == 0.5


# --------------------------------------------------------------------------- proxy task


@pytest.fixture(scope="module")
def tiny_teacher(tiny_teacher_dir):
    return loading.load_classifier(str(tiny_teacher_dir))


@pytest.mark.parametrize(
    "genome",
    [
        {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 4,
         "intermediate_size": 37},  # teacher's width: word embeddings frozen
        {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
         "intermediate_size": 20},  # narrower: sliced weights
    ],
    ids=["same-width", "narrower"],
)
def test_proxy_task_on_the_tiny_teacher(tiny_teacher, tiny_tokenizer, tiny_teacher_dir, genome):
    from distillery.nas.latency import ExportLatency

    latency = ExportLatency(reference=tiny_teacher, tokenizer=tiny_tokenizer,
                            tokenizer_dir=str(tiny_teacher_dir), texts=make_sentences(4, 2),
                            max_length=32, repeats=10, rounds=2)
    task = nas.ProxyTask(
        teacher=tiny_teacher, tokenizer=tiny_tokenizer, train=make_sentences(32, 0),
        val=make_sentences(16, 1), max_length=32, steps=3, batch_size=8, lr=1e-3,
        params_penalty=0.5, latency=latency,
    )
    fitness, info = task(genome)
    assert set(info) == {"score", "n_params", "encoder_params", "latency_ms",
                         "reference_latency_ms", "speedup", "train_s"}
    # the int8 files of the teacher and the candidate, timed side by side, end to end
    assert info["speedup"] == pytest.approx(info["reference_latency_ms"] / info["latency_ms"],
                                            rel=1e-2)
    assert 0.0 <= info["score"] <= 1.0
    assert info["score"] * 16 == round(info["score"] * 16)  # a fraction of 16 examples
    student = families.build_student(genome, tiny_teacher, init=False)
    assert info["n_params"] == loading.count_params(student)
    assert info["encoder_params"] == families.encoder_params(student)
    assert info["latency_ms"] > 0
    assert fitness == pytest.approx(info["score"] - 0.5 * info["encoder_params"] / 1e6)


# --------------------------------------------------------------------------- NSGA-II, selection


def test_nsga2_is_multi_objective_and_repairs_genomes():
    history = _search("nsga2", population=6, generations=4, seed=1)
    assert len(history) == 24
    assert all(_in_space(c.genome, DEFAULT_SPACE) for c in history)  # repaired when needed
    for c in history:  # first objective = the proxy score, not the penalised fitness
        assert c.fitness == c.info["score"]


def test_nsga2_trains_each_repaired_genome_once():
    fitness = FakeFitness()
    history = _search("nsga2", population=6, generations=4, seed=1, fitness=fitness)
    assert max(Counter(fitness.calls).values()) == 1
    assert set(fitness.calls) == {nas.key(c.genome) for c in history}


def _scored(score, n_params, latency=1.0):
    c = _cand(0, score, n_params)
    c.info.update(score=score, latency_ms=latency)
    return c


def test_select_respects_limits_and_explains_when_nothing_fits():
    small, big = _scored(0.8, 2e6, 1.0), _scored(0.9, 9e6, 3.0)
    assert nas.select([small, big]) is big
    assert nas.select([small, big], max_params=5) is small
    assert nas.select([small, big], max_latency_ms=2.0) is small
    with pytest.raises(ValueError, match=r"nas.max_params=1 .*smallest has 2.00M"):
        nas.select([small, big], max_params=1)


def test_select_within_the_speed_budget():
    fast, slow = _scored(0.8, 2e6), _scored(0.9, 9e6)
    fast.info["speedup"], slow.info["speedup"] = 6.0, 3.0
    assert nas.select([fast, slow], min_speedup=4.0) is fast
    assert nas.select([fast, slow]) is slow
    with pytest.raises(ValueError, match=r"nas.min_speedup=8.0: .*\(6.00x\)"):
        nas.select([fast, slow], min_speedup=8.0)


def test_a_candidate_over_the_speed_budget_ranks_below_every_one_within(tiny_teacher,
                                                                       tiny_tokenizer):
    genome = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 4,
              "intermediate_size": 37}

    def fitness(speedup):
        task = nas.ProxyTask(teacher=tiny_teacher, tokenizer=tiny_tokenizer,
                             train=make_sentences(16, 0), val=make_sentences(8, 1),
                             max_length=32, steps=1, batch_size=8, lr=1e-3, min_speedup=4.0,
                             latency=lambda model: {"latency_ms": 1 / speedup,
                                                    "speedup": speedup})
        return task(genome)

    within, info = fitness(4.0)
    assert within == info["score"]
    slower, info = fitness(2.0)
    assert slower == pytest.approx(info["score"] - 2.0)  # score - min_speedup / speedup
    assert slower < 0 <= within
    assert fitness(3.0)[0] > slower  # nearer the budget ranks higher


def test_head_size_ties_heads_to_width():
    space = {**DEFAULT_SPACE, "hidden_size": [128, 384], "num_attention_heads": [4, 12],
             "head_size": 32}
    g = nas.GenomeSpace(space).repair({"num_hidden_layers": 1, "hidden_size": 384,
                                       "num_attention_heads": 4, "intermediate_size": 384})
    assert g["num_attention_heads"] == 12
    rng = random.Random(0)
    genomes = [nas.random_genome(space, rng) for _ in range(50)]
    assert all(g["hidden_size"] == 32 * g["num_attention_heads"] for g in genomes)
    child = nas.mutate(genomes[0], space, 0.0, rng)  # a forced change survives the tie
    assert child != genomes[0] and child["hidden_size"] == 32 * child["num_attention_heads"]


def test_the_default_space_holds_120_architectures():
    import dataclasses

    from distillery.config.nas import SearchSpace

    space = dataclasses.asdict(SearchSpace())
    combos = itertools.product(*(space[g] for g in nas.GenomeSpace(space).names))
    keys = {nas.GenomeSpace(space).key(dict(zip(nas.GenomeSpace(space).names, c, strict=True)))
            for c in combos}
    assert len(keys) == 120


def test_pareto_front_keeps_only_undominated_candidates():
    a, b, c, d = _scored(0.7, 1e6), _scored(0.8, 2e6), _scored(0.75, 3e6), _scored(0.9, 4e6)
    for i, x in enumerate((a, b, c, d)):
        x.genome = {**x.genome, "intermediate_size": i}
    assert nas.pareto_front([d, c, b, a]) == [a, b, d]


def test_kd_proxy_trains_towards_the_teacher_logits(tiny_teacher, tiny_tokenizer):
    """With alpha = 0 the KD proxy learns only from the given logits: logits that say the
    opposite of the labels must drive the score below the CE proxy's."""
    import numpy as np

    train = make_sentences(64, 0)
    flipped = np.array([[4.0, -4.0] if y else [-4.0, 4.0] for y in train.labels], np.float32)
    genome = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 4,
              "intermediate_size": 37}

    def score(kd_logits):
        task = nas.ProxyTask(teacher=tiny_teacher, tokenizer=tiny_tokenizer, train=train,
                             val=train, max_length=32, steps=60, batch_size=16, lr=1e-2,
                             kd_logits=kd_logits, kd_alpha=0.0)
        return task(genome)[1]["score"]

    flipped_score, ce_score = score(flipped), score(None)
    assert flipped_score < 0.5 < ce_score


def test_nas_table_values_and_replays():
    """Every genome of a small space in a table; a pick over the budget is worth the worst
    admissible score; every strategy replays at the pipeline's budget."""
    import dataclasses

    from distillery.config.nas import NasParams, SearchSpace
    from distillery.studies import tabular

    space = SearchSpace(num_hidden_layers=[1, 2, 3], hidden_size=[64, 128],
                        num_attention_heads=[2, 4], intermediate_size=[64, 128], head_size=32)
    genomes = tabular.every_genome(dataclasses.asdict(space))
    assert len(genomes) == 3 * 2 * 2
    rows = [{**g, "score": 0.5 + 0.05 * g["num_hidden_layers"] + g["hidden_size"] / 1e4,
             "speedup": 8.0 / g["num_hidden_layers"], "latency_ms": g["num_hidden_layers"],
             "n_params": g["hidden_size"] * g["num_hidden_layers"]} for g in genomes]
    table = tabular.NasTable(rows, min_speedup=4.0)  # 1-2 layers within, 3 layers not
    assert table.best == pytest.approx(0.5 + 0.1 + 0.0128)
    assert table.floor == pytest.approx(0.5 + 0.05 + 0.0064)
    deep = {"num_hidden_layers": 3, "hidden_size": 128, "num_attention_heads": 4,
            "intermediate_size": 64}
    assert table.value(deep) == table.floor  # the best score, but over the budget
    fit, info = table.fitness(deep)
    assert fit == pytest.approx(info["score"] - 4.0 / (8.0 / 3))
    p = NasParams(population=4, generations=3, search_space=space)
    for strategy in ("evolution", "regularized", "nsga2", "random"):
        picks = tabular.replay_nas(table, strategy, 0, p)
        assert len(picks) == 12 and all(nas.key(g) in table.by_key for g in picks)
    with pytest.raises(ValueError, match="nothing to search for"):
        tabular.NasTable(rows, min_speedup=100.0)


def test_versus_random_is_a_paired_mean_with_its_interval():
    from distillery.studies import tabular

    def run(values):
        return {"values": values, "table_best": 1.0, "random_best": 0.0}

    runs = {"random": [run([0.5, 0.6]), run([0.7, 0.7]), run([0.4, 0.8])],
            "evolution": [run([0.9, 1.0]), run([0.8, 0.9]), run([0.9, 0.9])]}
    vs = tabular.versus(runs, "evolution")
    # final regrets: random 0.4, 0.3, 0.2; evolution 0.0, 0.1, 0.1
    assert vs["diff"] == pytest.approx(-0.7 / 3)
    assert vs["ci95"][0] <= vs["diff"] <= vs["ci95"][1] < 0
