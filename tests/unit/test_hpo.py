"""Tests of ``distillery.teachers.hpo``: the search space of each method, recipes, training length
that scales with the classes, validation during training (early stopping, best checkpoint),
head learning rates, both fine-tuning methods, trial history and bound diagnostics, the data
fingerprint that names a study. (Samplers, pruning and the runner: ``test_search.py``.)"""

from __future__ import annotations

import dataclasses
import math

import optuna
import pytest
import torch

from distillery.config.hpo import HpoParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import fingerprint
from distillery.teachers import hpo

P = HpoParams()
SPACE = hpo.search_space(P)
LORA = dataclasses.replace(P, method=["lora"])
FULL = dataclasses.replace(P, method=["full"])


def test_space_holds_the_dimensions_of_the_methods_searched():
    assert SPACE.names == ["method", "lr", "rank", "alpha", "dropout", "full_lr", "head_lr",
                           "weight_decay"]
    assert hpo.search_space(FULL).names == ["full_lr", "head_lr", "weight_decay"]
    assert hpo.search_space(LORA, causal=True).names == ["lr", "rank", "alpha", "dropout",
                                                         "weight_decay"]


def test_lora_space_scales():
    space = hpo.search_space(LORA)
    middle = space.from_unit([0.5] * len(space))
    assert middle["lr"] == pytest.approx(math.sqrt(1e-4 * 3e-3))  # log midpoint
    assert middle["rank"] == round(math.sqrt(2 * 64)) and isinstance(middle["rank"], int)
    assert middle["alpha"] == 16 and isinstance(middle["alpha"], int)
    assert middle["dropout"] == pytest.approx(0.15)
    assert middle["weight_decay"] == pytest.approx(1e-3)


def test_recipe_reads_the_method_and_its_own_learning_rate():
    params = {"method": 0, "lr": 1e-3, "rank": 8.0, "alpha": 16, "dropout": 0.1,
              "full_lr": 5e-5, "head_lr": 1e-3, "weight_decay": 0.01}
    full = hpo.recipe(params, P)
    assert (full.method, full.lr, full.head_lr) == ("full", 5e-5, 1e-3)
    lora = hpo.recipe({**params, "method": 1}, P)
    assert (lora.method, lora.lr, lora.rank) == ("lora", 1e-3, 8)
    assert isinstance(lora.lora().rank, int) and lora.lora().weight_decay == 0.01
    # one method: no "method" key; a causal teacher has no head_lr (the head is the LM's)
    causal = hpo.recipe({"lr": 2e-4, "rank": 4, "alpha": 8, "dropout": 0.0,
                         "weight_decay": 0.1}, LORA)
    assert causal.method == "lora" and causal.head_lr == 2e-4


def test_training_length_scales_with_the_number_of_classes():
    # binary, 4,000 examples: min_epochs (2) decides: 250 steps
    assert hpo.total_steps(P, 4000, hpo.run_epochs(P, 4000, 2)) == 250
    # 64 intents: 16 steps a class = 1,024 steps, 8.2 passes
    epochs = hpo.run_epochs(P, 4000, 64)
    assert epochs == pytest.approx(8.192) and hpo.total_steps(P, 4000, epochs) == 1024
    # a trial on 2,000 examples: the same passes, half the steps
    assert hpo.total_steps(P, 2000, epochs) == 512


def test_trial_examples_all_is_the_final_fidelity():
    assert hpo.trial_size(P, 1500) == 1500 and hpo.trial_size(P, 8000) == 2000
    assert hpo.trial_size(dataclasses.replace(P, trial_examples="all"), 8000) == 8000


class _Scores:
    """Validation scores in a fixed order; each call also moves the model's weights."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, model):
        with torch.no_grad():
            model.weight.add_(1.0)
        return self.values.pop(0)


def test_validator_stops_after_patience_and_keeps_the_best_checkpoint():
    model = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.zeros_(model.weight)
    reported = []
    check = hpo.Validator(_Scores([0.5, 0.8, 0.6, 0.7, 0.9]), total_steps=10, n_evals=5,
                          patience=2, report=lambda v, k: reported.append((k, v)))
    stopped_at = next(step for step in range(1, 11) if check(step, 0.0, model))
    assert stopped_at == 8  # evaluations at 2, 4, 6, 8: 6 and 8 are no better
    assert (check.best, check.best_step, check.steps) == (0.8, 4, 8)
    assert reported == [(1, 0.5), (2, 0.8), (3, 0.8), (4, 0.8)]  # best so far, per eval
    check.restore(model)
    assert torch.all(model.weight == 2.0)  # the weights after the 2nd evaluation, not the 4th


def test_validator_without_patience_runs_to_the_end():
    model = torch.nn.Linear(2, 2, bias=False)
    check = hpo.Validator(_Scores([0.9, 0.1, 0.1]), total_steps=7, n_evals=3)
    assert not any(check(step, 0.0, model) for step in range(1, 8))
    assert sorted(check.at) == [3, 5, 7] and check.best_step == 3


def test_training_stops_when_the_hook_says_so(tiny_model, tiny_tokenizer):
    from distillery.modeling import training
    from tests.conftest import make_sentences

    cfg = training.TrainConfig(lr=1e-3, batch_size=8, max_length=16, steps=20)
    losses = training.train(tiny_model, make_sentences(40, 0), tiny_tokenizer, cfg, desc=None,
                            on_step=lambda step, loss, model: step == 3)
    assert len(losses) == 3


def _tiny_params(teacher_dir):
    tp = TeacherParams(model=str(teacher_dir), max_length=16)
    return tp, dataclasses.replace(P, batch_size=8)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_fine_tune_trains_the_head_at_its_own_rate(method, tiny_teacher_dir, tiny_tokenizer):
    from distillery.modeling import loading
    from tests.conftest import make_sentences

    tp, p = _tiny_params(tiny_teacher_dir)
    base = loading.load_classifier(tp.model, ["negative", "positive"])
    r = hpo.Recipe(method=method, lr=1e-3, head_lr=1e-2, weight_decay=0.0, rank=2, alpha=4)
    groups = []

    def spy(step, loss, model):
        if not groups:
            groups.extend(model_groups(model))

    def model_groups(model):
        return [(g["lr"], len(g["params"])) for g in hpo.param_groups(
            model, ("classifier",), r)]

    model = hpo.fine_tune(tp, p, r, make_sentences(16, 0), 1.0, tiny_tokenizer,
                          ["negative", "positive"], on_step=spy)
    assert [lr for lr, _ in groups] == [1e-3, 1e-2]
    teacher = hpo.merged(model)
    assert type(teacher) is type(base)  # a plain transformers model either way
    emb = "bert.embeddings.word_embeddings.weight"
    moved = not torch.equal(teacher.state_dict()[emb], base.state_dict()[emb])
    assert moved == (method == "full")  # LoRA leaves the embeddings alone
    assert not torch.equal(teacher.classifier.weight, base.classifier.weight)


def _study(values, pruned=(), cached=()):
    study = optuna.create_study(direction="maximize")
    for i, v in enumerate(values):
        trial = study.ask(SPACE.distributions())
        trial.report(v, 1)
        if i in cached:
            trial.set_user_attr("cached", 0)
        if i in pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, v)
    return study


def test_history_best_so_far_pruned_and_cached():
    rows = hpo.history(_study([0.5, 0.9, 0.7, 0.6], pruned=(1,), cached=(3,)).trials, SPACE, P)
    assert [r["score"] for r in rows] == [0.5, 0.9, 0.7, 0.6]  # pruned: its best when stopped
    assert [r["best_so_far"] for r in rows] == [0.5, 0.5, 0.7, 0.7]  # finished trials only
    assert [r["pruned"] for r in rows] == [0, 1, 0, 0]
    assert [r["cached"] for r in rows] == [0, 0, 0, 1]
    assert {r["method"] for r in rows} <= {"full", "lora"}
    assert set(rows[0]) == {"trial", *SPACE.names, "score", "best_so_far", "pruned", "evals",
                            "cached"}
    scores = hpo.method_scores(rows)
    assert max(v for k, v in scores.items() if k.startswith("best_score_")) == 0.9
    assert sum(v for k, v in scores.items() if k.startswith("n_pruned_")) == 1


def test_on_bounds_counts_trials_at_either_end():
    space = hpo.search_space(LORA, causal=True)
    rows = [space.from_unit([0.0, 0.5, 1.0, 0.5, 0.5]), space.from_unit([0.5, 0.5, 1.0, 0.5, 1])]
    share = hpo.on_bounds(rows, space)
    assert share == {"lr": 0.5, "rank": 0.0, "alpha": 1.0, "dropout": 0.0, "weight_decay": 0.5}


def test_fingerprint_follows_content(tmp_path):
    (tmp_path / "a.jsonl").write_text("x")
    first = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == first
    (tmp_path / "a.jsonl").write_text("y")
    assert fingerprint(tmp_path) != first



def test_head_lr_null_trains_the_head_at_the_encoders_rate():
    p = dataclasses.replace(LORA, head_lr=None)
    space = hpo.search_space(p)
    assert "head_lr" not in space.names
    r = hpo.recipe(space.from_unit([0.5] * len(space)), p)
    assert r.head_lr == r.lr
