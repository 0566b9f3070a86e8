"""Tests of ``distillery.modeling.families``: for every supported encoder family, a student built
from a tiny random teacher is initialised exactly, trains, prunes, takes LoRA adapters and exports
to ONNX with the logits of torch; plus student configs, the layer map and weight transfer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from distillery.compress.pruning import unstructured as prune
from distillery.export import onnx_export
from distillery.measure import bench
from distillery.modeling import families, lora
from distillery.modeling.families import GENES
from tests.conftest import VOCAB, tiny_config

TINY = dict(vocab_size=len(VOCAB), max_position_embeddings=64, num_labels=3)
CONFIGS = {
    "bert": lambda: tiny_config(num_labels=3),
    "roberta": lambda: RobertaConfig(**TINY | {"max_position_embeddings": 66}, hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, pad_token_id=1),
    "xlm-roberta": lambda: XLMRobertaConfig(**TINY | {"max_position_embeddings": 66},
                                            hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=37,
                                            pad_token_id=1),
    "distilbert": lambda: DistilBertConfig(**TINY, dim=32, n_layers=2, n_heads=4,
                                           hidden_dim=37),
    "electra": lambda: ElectraConfig(**TINY, embedding_size=24, hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37),
    "deberta-v2": lambda: DebertaV2Config(**TINY, hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=4, intermediate_size=37,
                                          relative_attention=True, position_buckets=8,
                                          pos_att_type=["p2c", "c2p"]),
}
SMALL = {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
         "intermediate_size": 20}


def _teacher(model_type: str):
    torch.manual_seed(1)
    config = CONFIGS[model_type]()
    config.initializer_range = 0.2  # logits far apart: comparisons mean something
    return AutoModelForSequenceClassification.from_config(config).eval()


def _inputs(batch: int = 3, seq: int = 9, seed: int = 0, types: bool = False):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, len(VOCAB), (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    for row in range(1, batch):  # right padding of various lengths
        mask[row, seq - 2 * row:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    if types:
        feeds["token_type_ids"] = (torch.arange(seq) >= seq // 2).long().expand(batch, seq)
    return feeds


def _logits(model, feeds) -> torch.Tensor:
    with torch.no_grad():
        return model(**feeds).logits


family_types = pytest.mark.parametrize("model_type", list(CONFIGS))


def test_registry_lists_every_family():
    assert set(families.SUPPORTED) == set(CONFIGS)
    assert families.get("xlm-roberta") is families.get("roberta")
    with pytest.raises(ValueError, match=r"'gpt2' is not supported.*bert, deberta-v2, distilbert"):
        families.get("gpt2")


@family_types
def test_same_shape_student_reproduces_the_teacher(model_type):
    teacher = _teacher(model_type)
    genome = families.genome_of(teacher.config)
    assert genome == {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
                      "intermediate_size": 37}
    student = families.build_student(genome, teacher).eval()
    assert type(student) is type(teacher)
    assert student.config.id2label == teacher.config.id2label
    feeds = _inputs()
    torch.testing.assert_close(_logits(student, feeds), _logits(teacher, feeds),
                               rtol=0, atol=0)


@family_types
def test_smaller_student_takes_slices_of_the_last_teacher_layer(model_type):
    teacher = _teacher(model_type)
    student = families.build_student(SMALL, teacher)
    assert families.genome_of(student.config) == SMALL
    counts = families.init_from_teacher(student, teacher)
    assert counts["random"] == 0 and counts["sliced"] > 0
    linear = [n for n, m in families.layers(student)[0].named_modules()
              if isinstance(m, torch.nn.Linear)]
    assert linear
    t_last = families.layers(teacher)[-1]
    for name in linear:
        w = families.layers(student)[0].get_submodule(name).weight
        src = t_last.get_submodule(name).weight
        assert torch.equal(w, src[: w.shape[0], : w.shape[1]]), name
    assert families.encoder_params(student) < families.encoder_params(teacher)


@family_types
def test_student_learns_a_fixed_batch(model_type):
    student = families.build_student(SMALL, _teacher(model_type)).train()
    feeds = _inputs(batch=6, seed=3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.AdamW(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = student(**feeds, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]


@family_types
def test_onnx_export_matches_torch_and_keeps_metadata(model_type, tmp_path):
    model = families.build_student(SMALL, _teacher(model_type)).eval()
    types = getattr(model.config, "type_vocab_size", 0) > 0 and model_type != "roberta"
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if types else [])
    path = tmp_path / "m.onnx"
    onnx_export.export(model, path, opset=18, input_names=names,
                       metadata={"labels": '["a", "b", "c"]', "model_type": model_type})
    assert onnx_export.read_metadata(path) == {"labels": '["a", "b", "c"]',
                                               "model_type": model_type}
    session = bench.ort_session(str(path), "cpu")
    assert [i.name for i in session.get_inputs()] == names
    feeds = _inputs(batch=4, seq=11, seed=5, types=types)
    (got,) = session.run(["logits"], {k: v.numpy() for k, v in feeds.items()})
    np.testing.assert_allclose(got, _logits(model, feeds).numpy(), atol=1e-4, rtol=0)


@family_types
def test_lora_defaults_adapt_every_layer_linear_and_train_the_head(model_type):
    teacher = _teacher(model_type)
    family = families.get(teacher)
    linear = {f"base_model.model.{family.layers}.{n}"
              for n, m in families.layers(teacher).named_modules()
              if isinstance(m, torch.nn.Linear)}
    model = lora.apply_lora(teacher, lora.LoraHyper(lr=1e-3, rank=2, alpha=4, dropout=0.0))
    adapted = {n.split(".lora_A.")[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    assert len(linear) >= 2 * 6 and adapted == linear  # 2 layers x (q, k, v, o, ffn in, out)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    for head in family.head:
        assert any(f".{head}." in n for n in trainable), head
    merged = lora.merge(model)
    assert type(merged) is type(teacher)


@family_types
def test_pruning_reaches_every_family_layer_and_nothing_else(model_type):
    model = _teacher(model_type)
    params = prune.prunable(model)
    in_layers = {id(m) for m in families.layers(model).modules()
                 if isinstance(m, torch.nn.Linear)}
    assert params and {id(m) for m, _ in params} == in_layers
    prune.apply_global_magnitude(model, 0.5)
    prune.make_permanent(model)
    assert prune.sparsity(model) == pytest.approx(0.5, abs=0.01)


def test_student_config_of_distilbert_uses_its_own_names():
    cfg = families.student_config(CONFIGS["distilbert"](), SMALL)
    assert (cfg.n_layers, cfg.dim, cfg.n_heads, cfg.hidden_dim) == (1, 16, 2, 20)


def test_student_config_fixes_derived_sizes():
    electra = families.student_config(CONFIGS["electra"](), SMALL)
    assert electra.embedding_size == 16  # a slice of the teacher's 24-wide embeddings
    deberta = families.student_config(CONFIGS["deberta-v2"](), SMALL)
    assert deberta.pooler_hidden_size == 16


def test_init_refuses_a_student_of_another_family():
    bert, roberta = _teacher("bert"), _teacher("roberta")
    with pytest.raises(ValueError, match="same family"):
        families.init_from_teacher(bert, roberta)


# --------------------------------------------------------------------------- student configs


def test_student_config_takes_vocab_from_teacher_and_shape_from_genome():
    teacher = tiny_config(max_position_embeddings=48, type_vocab_size=3, pad_token_id=1,
                          hidden_act="gelu_new")
    genome = {"num_hidden_layers": 3, "hidden_size": 16, "num_attention_heads": 2,
              "intermediate_size": 20}
    cfg = families.student_config(teacher, genome)
    assert {g: getattr(cfg, g) for g in GENES} == genome
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size) == (
        teacher.vocab_size, 48, 3)
    assert (cfg.pad_token_id, cfg.hidden_act, cfg.num_labels) == (1, "gelu_new", 2)


def test_student_config_rejects_an_invalid_genome():
    genome = {"num_hidden_layers": 1, "hidden_size": 30, "num_attention_heads": 4,
              "intermediate_size": 20}
    with pytest.raises(ValueError, match="hidden_size % num_attention_heads"):
        families.student_config(tiny_config(), genome)


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
    assert families.layer_map(n_student, n_teacher) == expected


@pytest.mark.parametrize("n_teacher", range(1, 13))
def test_layer_map_is_increasing_and_keeps_the_last_layer(n_teacher):
    for n_student in range(1, n_teacher + 1):
        mapping = families.layer_map(n_student, n_teacher)
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
        families.student_config(teacher.config, _genome(2, 32, 4, 37)))
    counts = families.init_from_teacher(student, teacher)
    assert counts == {"copied": len(student.state_dict()), "sliced": 0, "random": 0}
    s, t = student.state_dict(), teacher.state_dict()
    for name in ("bert.embeddings.word_embeddings.weight",
                 "bert.embeddings.position_embeddings.weight",
                 "bert.pooler.dense.weight", "classifier.weight", "classifier.bias"):
        assert torch.equal(s[name], t[name]), name
    for i, j in enumerate(families.layer_map(2, 4)):  # [1, 3]
        for tail in ("attention.self.query.weight", "intermediate.dense.weight",
                     "output.LayerNorm.bias"):
            assert torch.equal(s[f"bert.encoder.layer.{i}.{tail}"],
                               t[f"bert.encoder.layer.{j}.{tail}"]), (i, tail)


def test_init_from_teacher_slices_smaller_tensors(teacher):
    student = BertForSequenceClassification(
        families.student_config(teacher.config, _genome(1, 16, 2, 20)))
    counts = families.init_from_teacher(student, teacher)
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
        families.student_config(teacher.config, _genome(1, 32, 4, 64)))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    counts = families.init_from_teacher(student, teacher)
    # intermediate 64 > 37: intermediate.dense.{weight,bias} and output.dense.weight stay random
    assert counts["random"] == 3
    name = "bert.encoder.layer.0.intermediate.dense.weight"
    assert torch.equal(student.state_dict()[name], before[name])
    assert torch.equal(student.state_dict()["bert.encoder.layer.0.output.dense.bias"],
                       teacher.state_dict()["bert.encoder.layer.3.output.dense.bias"])


@pytest.mark.parametrize("init", [True, False])
def test_build_student(teacher, init):
    student = families.build_student(_genome(1, 16, 2, 20), teacher, init=init)
    assert student.config.num_hidden_layers == 1 and student.config.hidden_size == 16
    emb = student.bert.embeddings.word_embeddings.weight
    same = torch.equal(emb, teacher.bert.embeddings.word_embeddings.weight[:, :16])
    assert same is init


