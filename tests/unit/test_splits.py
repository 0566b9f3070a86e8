"""Tests of ``distillery.data.splits``: stratified allocation and the disjoint prepared splits."""

from __future__ import annotations

import random
import tracemalloc
from collections import Counter

import pytest

from distillery.data.prepared import Split
from distillery.data.splits import allocate, make_splits, related, stratified_indices
from tests.conftest import make_pairs, make_sentences


def _labels(*sizes: int) -> list[int]:
    labels = [c for c, n in enumerate(sizes) for _ in range(n)]
    random.Random(0).shuffle(labels)
    return labels


def _counts(labels: list[int], idx: list[int]) -> list[int]:
    got = Counter(labels[i] for i in idx)
    return [got[c] for c in range(max(labels) + 1)]


# --------------------------------------------------------------------------- allocation


def test_no_negative_count_regression():
    """4 classes of 23% and one of 8%, n = 11: rounding each share (3, 3, 3, 3) left the last
    class 11 - 12 = -1 examples."""
    labels = _labels(23, 23, 23, 23, 8)
    idx = stratified_indices(labels, 11, random.Random(0))
    assert len(idx) == len(set(idx)) == 11
    assert _counts(labels, idx) == [3, 3, 2, 2, 1]  # largest remainders: .88, then .53 x 4


@pytest.mark.parametrize("sizes", [(23, 23, 23, 23, 8), (97, 2, 1), (50, 30, 20), (1, 1, 98)])
@pytest.mark.parametrize("n", [5, 11, 37, 99, 100])
def test_allocation_is_exact_proportional_and_keeps_every_class(sizes, n):
    counts = allocate(n, sizes)
    assert sum(counts) == n
    assert all(0 <= k <= s for k, s in zip(counts, sizes, strict=True))
    assert all(k >= 1 for k in counts)  # n >= number of classes
    for k, s in zip(counts, sizes, strict=True):
        quota = n * s / sum(sizes)
        assert k == 1 or abs(k - quota) < 1 + len(sizes), (counts, quota)


def test_a_rare_class_keeps_one_example():
    labels = _labels(97, 2, 1)
    assert _counts(labels, stratified_indices(labels, 3, random.Random(0))) == [1, 1, 1]
    assert _counts(labels, stratified_indices(labels, 10, random.Random(0))) == [8, 1, 1]


def test_fewer_examples_than_classes_allows_zeros():
    assert allocate(2, [50, 30, 20]) == [1, 1, 0]


def test_a_class_smaller_than_its_share_gives_all_and_the_rest_is_shared():
    # equal shares of 10 are 3.33 each; class 0 has only 2: the 1.33 it lacks goes to the others
    assert allocate(10, [2, 50, 50], weights=[1, 1, 1]) == [2, 4, 4]
    assert allocate(10, [2, 50, 10], weights=[1, 1, 1]) == [2, 4, 4]
    assert allocate(12, [2, 50, 3], weights=[1, 1, 1]) == [2, 7, 3]  # two classes short


def test_taking_everything():
    labels = _labels(5, 1, 3)
    assert sorted(stratified_indices(labels, 9, random.Random(0))) == list(range(9))


@pytest.mark.parametrize("n", [10, -1])
def test_asking_for_too_many(n):
    with pytest.raises(ValueError, match=f"asked for {n} examples but only 9 are available"):
        stratified_indices(_labels(5, 1, 3), n, random.Random(0))


def test_stratified_indices_is_seeded():
    labels = _labels(40, 40, 20)
    first = stratified_indices(labels, 30, random.Random(1))
    assert stratified_indices(labels, 30, random.Random(1)) == first
    assert stratified_indices(labels, 30, random.Random(2)) != first


# --------------------------------------------------------------------------- make_splits


@pytest.fixture(scope="module")
def pool() -> Split:
    return make_sentences(400, seed=1)  # balanced, unique sentences


@pytest.fixture(scope="module")
def dev() -> Split:
    return make_sentences(60, seed=2)


def _key_sets(splits: dict[str, Split]) -> dict[str, set]:
    return {k: set(zip(v.texts, v.pairs or [None] * len(v), strict=True))
            for k, v in splits.items()}


def _assert_disjoint(splits: dict[str, Split]) -> None:
    sets = _key_sets(splits)
    for a, b in [("train", "val"), ("train", "transfer"), ("val", "transfer"), ("train", "eval"),
                 ("val", "eval"), ("transfer", "eval")]:
        assert not sets[a] & sets[b], (a, b)


@pytest.mark.parametrize(
    ("n_train", "n_val", "n_transfer"), [(100, 40, 60), (50, 10, 0), (200, 100, 100), (1, 1, 398)]
)
def test_make_splits_exact_sizes_and_disjoint(pool, dev, n_train, n_val, n_transfer):
    splits, info = make_splits(pool, dev, n_train, n_val, n_transfer, eval_size=50, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {
        "train": n_train, "val": n_val, "transfer": n_transfer, "eval": 60}
    assert splits["eval"] == dev  # a given eval split is kept whole
    _assert_disjoint(splits)
    assert info == {"duplicates_dropped": 0, "conflicting_duplicates": 0, "overlap_dropped": 0,
                    "eval_carved": False,
                    "pool_size": 400, "val_related_to_train_excluded": 0,
                    "transfer_related_to_val_excluded": 0}


def test_make_splits_keeps_each_text_with_its_label_and_unlabels_transfer(pool, dev):
    truth = dict(zip(pool.texts, pool.labels, strict=True))
    splits, _ = make_splits(pool, dev, 100, 40, 60, 50, seed=0)
    for name in ("train", "val"):
        split = splits[name]
        assert all(truth[s] == y for s, y in zip(split.texts, split.labels, strict=True))
    assert splits["transfer"].labels == [-1] * 60
    assert set(splits["transfer"].texts) <= set(pool.texts)


@pytest.mark.parametrize("rate", [0.5, 0.3, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_make_splits_is_stratified(rate, seed):
    full = make_sentences(2000, seed=3)
    pos = [i for i, y in enumerate(full.labels) if y == 1][: int(500 * rate)]
    neg = [i for i, y in enumerate(full.labels) if y == 0][: 500 - len(pos)]
    source = full.subset(pos + neg)
    splits, _ = make_splits(source, None, 120, 50, 0, eval_size=100, seed=seed)
    for name, n in (("train", 120), ("val", 50), ("eval", 100)):
        assert abs(sum(splits[name].labels) / n - rate) <= 1 / n + 1e-9, name


def test_make_splits_is_deterministic_for_a_seed(pool, dev):
    first = make_splits(pool, dev, 100, 40, 60, 50, seed=7)
    assert make_splits(pool, dev, 100, 40, 60, 50, seed=7) == first
    assert make_splits(pool, dev, 100, 40, 60, 50, seed=8)[0] != first[0]


def test_make_splits_drops_duplicates_by_text_and_pair():
    base = make_pairs(60, seed=4)
    other_pair = Split(base.texts[:10], base.labels[:10], [p + " yes" for p in base.pairs[:10]])
    doubled = Split(base.texts * 2 + other_pair.texts, base.labels * 2 + other_pair.labels,
                    base.pairs * 2 + other_pair.pairs)
    splits, info = make_splits(doubled, base.subset([0]), 30, 10, 29, 5, seed=0)
    assert info["duplicates_dropped"] == 60  # a text with another pair is not a duplicate
    assert info["overlap_dropped"] == 1
    everything = [k for name in ("train", "val", "transfer") for k in _key_sets(splits)[name]]
    assert len(everything) == len(set(everything)) == 69
    _assert_disjoint(splits)


def test_make_splits_drops_train_examples_also_in_eval(pool):
    eval_ = Split(pool.texts[:25] + ["only in eval"], pool.labels[:25] + [1])
    splits, info = make_splits(pool, eval_, 100, 40, 235, 50, seed=0)  # all 375 left used
    assert info["overlap_dropped"] == 25 and info["pool_size"] == 375
    _assert_disjoint(splits)


def test_make_splits_carves_a_stratified_eval(pool):
    splits, info = make_splits(pool, None, 100, 40, 60, eval_size=50, seed=0)
    assert info["eval_carved"] is True and info["pool_size"] == 350
    assert len(splits["eval"]) == 50 and sorted(Counter(splits["eval"].labels).values()) == [25, 25]
    assert -1 not in splits["eval"].labels
    _assert_disjoint(splits)


def test_carved_eval_can_stay_fixed_while_the_seed_varies(pool):
    a, _ = make_splits(pool, None, 100, 40, 60, 50, seed=0, eval_seed=5)
    b, _ = make_splits(pool, None, 100, 40, 60, 50, seed=1, eval_seed=5)
    assert a["eval"] == b["eval"] and a["train"] != b["train"]
    c, _ = make_splits(pool, None, 100, 40, 60, 50, seed=0)
    assert c["eval"] != a["eval"]  # eval_seed defaults to seed


@pytest.mark.parametrize(
    ("sizes", "eval_size", "match"),
    [((350, 60, 0), None, r"prepare\.n_train \+ prepare\.n_val = 410 but only 400 .*lower "
                        r"prepare\.n_train or prepare\.n_val"),
     ((300, 60, 0), 50, r"= 360 but only 350"),
     ((100, 40, 261), None, r"prepare\.n_transfer=261 but only 260 .*at most 260"),
     ((100, 40, 0), 401, r"data\.eval_size=401 but train has only 400")],
    ids=["train+val", "train+val-after-carving", "transfer", "eval-size"],
)
def test_make_splits_asking_for_too_much_names_the_key(pool, sizes, eval_size, match):
    """``eval_size`` None: an eval split is given, else one is carved."""
    eval_ = make_sentences(5, seed=9) if eval_size is None else None
    with pytest.raises(ValueError, match=match):
        make_splits(pool, eval_, *sizes, eval_size=eval_size or 1, seed=0)


def test_duplicates_with_another_label_are_counted_and_warned_once(caplog):
    texts = ["a b", "c d", "a b", "a b", "c d", "e f", "g h"]
    train = Split(texts, [0, 1, 0, 1, 0, 1, 0])  # "a b": 0, 0, 1; "c d": 1, 0
    with caplog.at_level("WARNING", logger="distillery.data.splits"):
        splits, info = make_splits(train, Split(["z"], [0]), 3, 1, 0, eval_size=1, seed=0)
    assert (info["duplicates_dropped"], info["conflicting_duplicates"]) == (3, 2)
    kept = {t: y for s in ("train", "val")
            for t, y in zip(splits[s].texts, splits[s].labels, strict=True)}
    assert kept == {"a b": 0, "c d": 1, "e f": 1, "g h": 0}  # the first occurrence's label
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "2 duplicate example(s) carry another label" in warned[0]
    assert "'a b': class id 0, then 1" in warned[0]


# --------------------------------------------------------------------------- phrase leakage


def test_related_is_word_level_containment_either_way():
    ref = ["a gorgeous film", "Dull"]
    cands = ["A  gorgeous film , funny", "gorgeous", "films", "dull and long", "bright", "dullness"]
    assert related(cands, ref) == [True, True, False, True, False, False]


def test_related_caps_the_run_length():
    long = " ".join(f"w{i}" for i in range(100))
    assert related([long], [" ".join(f"w{i}" for i in range(10, 20))]) == [True]
    assert related([long], [" ".join(f"w{i}" for i in range(10, 80))], max_words=64) == [False]


def _related_by_brute_force(candidates, reference, max_words=64):
    """The definition, spelled out: every run of up to ``max_words`` words of every text."""
    def runs(text):
        w = text.lower().split()
        return {" ".join(w[i:i + k]) for k in range(1, min(len(w), max_words) + 1)
                for i in range(len(w) - k + 1)}
    norm = [" ".join(t.lower().split()) for t in reference]
    return [any(" ".join(c.lower().split()) in runs(r) or n in runs(c)
                for r, n in zip(reference, norm, strict=True)) for c in candidates]


@pytest.mark.parametrize("seed", range(5))
def test_related_matches_its_definition_on_random_texts(seed):
    rng = random.Random(seed)
    vocab = ["a", "b", "c", "d", "E", "f"]  # few words: many containments either way

    def text():
        return "  ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9)))
    cands, ref = [text() for _ in range(60)], [text() for _ in range(30)]
    assert related(cands, ref, max_words=4) == _related_by_brute_force(cands, ref, 4)
    assert related(cands, ref) == _related_by_brute_force(cands, ref)


def test_related_on_long_texts_stays_in_bounded_memory():
    """Multi-thousand-word texts: runs are never all held at once (a 4,000-word text held
    ~74 MB of run strings before); a short text inside a long one, and a long text holding a
    short one, are still found."""
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(2000)]
    long_texts = [" ".join(rng.choices(vocab, k=4000)) for _ in range(12)]
    inside = " ".join(long_texts[3].split()[1000:1030])  # 30 words of a reference text
    holds = long_texts[0] + " " + "x y z"  # a candidate holding the reference "X  y z"
    cands = [inside, holds, long_texts[5], "w1 w2 nowhere"]
    ref = long_texts[1:5] + ["X  y z"]
    tracemalloc.start()
    try:
        got = related(cands, ref)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [True, True, False, False]
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_val_is_unrelated_to_train_and_transfer_to_val():
    # sentences and their sub-phrases, as in SST-2's train split
    rows = []
    for s in range(60):
        words = [f"s{s}w{i}" for i in range(6)]
        for k in range(1, 7):
            rows.append((" ".join(words[:k]), s % 2))
    source = Split([r[0] for r in rows], [r[1] for r in rows])
    splits, info = make_splits(source, None, 60, 20, 40, eval_size=30, seed=0)
    train, val, transfer = (splits[k].texts for k in ("train", "val", "transfer"))
    assert not any(related(val, train))
    assert not any(related(transfer, val))
    assert info["val_related_to_train_excluded"] > 0
    assert info["transfer_related_to_val_excluded"] > 0


def test_too_few_unrelated_val_candidates_names_the_keys():
    source = Split([" ".join(["x"] * k) for k in range(1, 41)], [k % 2 for k in range(40)])
    with pytest.raises(ValueError, match="prepare.n_val=5 but only 0 examples are unrelated"):
        make_splits(source, None, 20, 5, 0, eval_size=5, seed=0)


@pytest.mark.parametrize(("n_train", "expected"), [("all", 300), (0.5, 150), (1.0, 300)])
def test_n_train_all_or_a_fraction_takes_what_val_and_transfer_leave(pool, dev, n_train,
                                                                      expected):
    splits, info = make_splits(pool, dev, n_train, 40, 60, eval_size=50, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {
        "train": expected, "val": 40, "transfer": 60, "eval": 60}
    _assert_disjoint(splits)
    assert set(splits["train"].labels) == {0, 1}
    assert all(y == -1 for y in splits["transfer"].labels)
    if n_train == "all":  # every example of the pool is used
        assert 300 + 40 + 60 + info["val_related_to_train_excluded"] == 400


def test_n_train_all_keeps_val_unrelated_to_train():
    phrases = Split(["a gorgeous film", "a gorgeous film , funny", "dull", "so dull and long",
                     *[f"text {i}" for i in range(40)]], [1, 1, 0, 0, *[i % 2 for i in range(40)]])
    for seed in range(5):
        splits, _ = make_splits(phrases, None, "all", 4, 0, eval_size=4, seed=seed)
        assert not any(related(splits["train"].texts, splits["val"].texts))


def test_n_train_all_with_no_room_left_names_the_key(pool, dev):
    with pytest.raises(ValueError, match="prepare.n_transfer"):
        make_splits(pool, dev, "all", 100, 300, eval_size=50, seed=0)
