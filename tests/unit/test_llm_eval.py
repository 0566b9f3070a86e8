"""Tests of lm-eval scoring of causal-LM teachers (``distillery.lmeval.evaluation``,
``distillery.lmeval.perplexity``) and of class log-scores as distillation targets.

lm-eval's accuracy equals the argmax accuracy of ``class_log_scores`` on the contexts lm-eval
built (zero- and few-shot), its perplexity equals a hand computation and drops after training
on the text, and class log-scores act as logits in the KD loss. Tiny random Llama / GPT-2 models
and the tiny byte-level BPE of ``llm_toys``; the data are jsonl files made here; nothing is
downloaded (network connections are refused while lm-eval runs).
"""

from __future__ import annotations

import math
import os
import random
import socket

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from distillery.core.io import UserError
from distillery.data.prepared import read_split, write_labels, write_split  # noqa: E402
from distillery.distill import losses  # noqa: E402
from distillery.lmeval import evaluation, perplexity, read_task  # noqa: E402
from distillery.measure import evaluate  # noqa: E402
from distillery.modeling.lora import LoraHyper  # noqa: E402
from distillery.modeling.training import TrainConfig  # noqa: E402
from distillery.teachers.causal import (  # noqa: E402
    Prompt,
    class_log_scores,
    finetune,
)
from distillery.teachers.causal.prompt import encode_requests  # noqa: E402
from distillery.teachers.causal.scoring import score_requests  # noqa: E402
from tests.conftest import make_sentences  # noqa: E402
from tests.unit.llm_toys import bpe_tokenizer, causal_lm  # noqa: E402

LABELS = ["negative", "positive"]
MAX_LENGTH = 128  # the tiny models' context: nothing here is cut


@pytest.fixture(scope="module")
def tok():
    return bpe_tokenizer(bos=True)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A prepared-style folder: 24 train sentences (the few-shot pool), 12 eval sentences."""
    folder = tmp_path_factory.mktemp("prepared")
    write_split(folder / "train.jsonl", make_sentences(24, seed=1))
    write_split(folder / "eval.jsonl", make_sentences(12, seed=3))
    write_labels(folder / "labels.json", LABELS, pair=False)
    return folder


@pytest.fixture(scope="module")
def tasks(prepared, tmp_path_factory):
    return evaluation.write_tasks(tmp_path_factory.mktemp("tasks"), Prompt.build(LABELS),
                                  prepared)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("a network connection was attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --------------------------------------------------------------------------- accuracy


def test_the_task_is_the_prompt(tasks, prepared):
    prompt = Prompt.build(LABELS)
    spec = read_task(tasks.classify)
    assert (spec.prompt, spec.verbalizers, spec.labels, spec.pair) == (
        prompt.template, list(prompt.verbalizers), list(prompt.labels), prompt.pair)
    assert spec.fewshot_file == str((prepared / "train.jsonl").resolve())
    config = yaml.safe_load(tasks.classify.read_text().split("process_docs:")[0])
    assert config["target_delimiter"] == "" and config["fewshot_split"] == "train"


@pytest.mark.parametrize(("arch", "shots"), [("llama", 0), ("llama", 2), ("gpt2", 0)],
                         ids=["llama-0-shot", "llama-2-shot", "gpt2-0-shot"])
def test_lm_eval_accuracy_is_argmax_of_class_log_scores(arch, shots, tasks, prepared, tok):
    tokenizer = tok if arch == "llama" else bpe_tokenizer(bos=False)
    model = causal_lm(arch, len(tokenizer))
    prompt = Prompt.build(LABELS)
    dev, train = read_split(prepared / "eval.jsonl"), read_split(prepared / "train.jsonl")
    found = evaluation.task_scores(model, tokenizer, tasks.classify, shots, batch_size=4)
    if shots == 0:
        assert found.contexts == [prompt.context(t) for t in dev.texts]
        ours = class_log_scores(model, tokenizer, prompt, dev, MAX_LENGTH, batch_size=5)
    else:  # k train examples with their gold verbalizer, then the example, "\n\n" apart
        shown = {prompt.context(t) + prompt.verbalizers[y]
                 for t, y in zip(train.texts, train.labels, strict=True)}
        for context, text in zip(found.contexts, dev.texts, strict=True):
            *shots_seen, last = context.split("\n\n")
            assert len(shots_seen) == shots and set(shots_seen) <= shown
            assert last == prompt.context(text)
        assert len(set(found.contexts)) == len(dev)  # the shots vary per example
        requests = encode_requests(tokenizer, prompt, found.contexts, None, formatted=True)
        ours = score_requests(model, requests, MAX_LENGTH, batch_size=5)
    np.testing.assert_allclose(found.log_likelihoods, ours, atol=1e-4)
    np.testing.assert_array_equal(found.log_likelihoods.argmax(1), ours.argmax(1))
    assert found.acc == pytest.approx(evaluate.accuracy(ours, dev.labels), abs=1e-6)
    metrics = found.metrics()
    assert metrics["macro_f1"] == pytest.approx(evaluate.macro_f1(ours, dev.labels), abs=1e-6)
    assert metrics["n"] == len(dev)


def test_limit_and_the_global_generators_are_left_alone(tasks, tok):
    model = causal_lm("llama", len(tok))
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    found = evaluation.lm_eval_accuracy(model, tok, tasks.classify, 2, limit=5, batch_size=4)
    assert found["n"] == 5
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


# --------------------------------------------------------------------------- perplexity


def test_reference_text_ships_with_scikit_learn():
    docs = perplexity.reference_documents()
    info = perplexity.describe(docs)
    assert info["documents"] == len(perplexity.REFERENCE_FILES) == 11
    assert 3000 < info["words"] < 4000
    assert not any(">>>" in d for d in docs)  # prose, no doctests
    assert docs[0].startswith(".. _breast_cancer_dataset:")


def test_a_missing_reference_file_is_named(tmp_path):
    (tmp_path / "iris.rst").write_text("Iris")
    with pytest.raises(UserError, match=r"breast_cancer.rst, .*wine_data.rst not in"):
        perplexity.reference_documents(tmp_path)


def _hand_log_likelihood(model, tok, text: str) -> float:
    """Sum of log p(token | BOS, earlier tokens) over the text's tokens (one window)."""
    ids = tok(text)["input_ids"]  # starts with <s>
    assert ids[0] == tok.bos_token_id and len(ids) <= MAX_LENGTH
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], -1)  # (T-1, V)
    return float(logp.gather(1, torch.tensor(ids[1:])[:, None]).sum())


def test_word_perplexity_is_the_hand_computed_one(tok, tmp_path):
    model = causal_lm("llama", len(tok))
    docs = ["The iris data set has three classes of fifty flowers.",
            "Each  class is a type of iris plant.\nOne is linearly separable."]
    task = perplexity.write_text_task(tmp_path, docs)
    found = perplexity.perplexity(model, tok, task)
    ll = sum(_hand_log_likelihood(model, tok, d) for d in docs)
    words, n_bytes = 10 + 12, sum(len(d.encode()) for d in docs)
    assert found["word_perplexity"] == pytest.approx(math.exp(-ll / words), rel=1e-4)
    assert found["bits_per_byte"] == pytest.approx(-ll / n_bytes / math.log(2), rel=1e-4)


def test_perplexity_drops_after_training_on_the_text(tok, tmp_path):
    model = causal_lm("llama", len(tok), init=0.02)
    task = perplexity.write_text_task(tmp_path)  # the real reference text, rolling windows
    before = perplexity.perplexity(model, tok, task, batch_size=16)
    assert all(math.isfinite(v) and v > 0 for v in before.values())
    ids = tok("\n\n".join(perplexity.reference_documents()))["input_ids"]
    chunks = torch.tensor([ids[i:i + 64] for i in range(0, len(ids) - 64, 64)])  # (B, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(30):
        batch = chunks[torch.randperm(len(chunks), generator=torch.Generator().manual_seed(step))
                       [:16]]
        model(batch, labels=batch).loss.backward()
        opt.step(), opt.zero_grad()
    after = perplexity.perplexity(model, tok, task, batch_size=16)
    assert after["word_perplexity"] < 0.5 * before["word_perplexity"]
    assert after["bits_per_byte"] < before["bits_per_byte"] - 0.5


# --------------------------------------------------------------------------- generic vs specialised


def test_generic_vs_specialised_of_a_lora_fine_tune(tasks, tok):
    model = causal_lm("llama", len(tok), init=0.1)
    prompt = Prompt.build(LABELS)
    base = evaluation.measure(model, tok, tasks, shots=(0, 2), batch_size=8)
    assert set(base) == {"acc_0shot", "macro_f1_0shot", "acc_2shot", "macro_f1_2shot",
                         *perplexity.METRICS}
    tuned = finetune.fine_tune(model, tok, prompt, make_sentences(128, seed=8),
                               LoraHyper(lr=5e-3, rank=8, alpha=16, dropout=0.0),
                               TrainConfig(lr=5e-3, batch_size=8, max_length=64, steps=120),
                               desc=None)
    specialised = evaluation.measure(tuned, tok, tasks, batch_size=8)  # a peft model
    found = evaluation.generic_vs_specialised(base, specialised, num_fewshot=2)
    assert found["specialised_acc"] >= 0.8  # 12 eval sentences; chance 0.5
    assert found["acc_gain_over_zero_shot"] >= 0.2
    assert found["acc_gain_over_zero_shot"] == specialised["acc_0shot"] - base["acc_0shot"]
    assert found["word_perplexity_ratio"] == pytest.approx(
        specialised["word_perplexity"] / base["word_perplexity"])


def test_generic_vs_specialised_keys_and_deltas():
    base = {"acc_0shot": 0.6, "acc_3shot": 0.7, "word_perplexity": 20.0, "bits_per_byte": 1.0}
    spec = {"acc_0shot": 0.9, "word_perplexity": 25.0, "bits_per_byte": 1.1}
    assert evaluation.generic_vs_specialised(base, spec, 3) == pytest.approx({
        "base_zero_shot_acc": 0.6, "base_few_shot_acc": 0.7, "few_shot_k": 3,
        "specialised_acc": 0.9, "acc_gain_over_zero_shot": 0.3, "acc_gain_over_few_shot": 0.2,
        "base_word_perplexity": 20.0, "specialised_word_perplexity": 25.0,
        "word_perplexity_ratio": 1.25, "base_bits_per_byte": 1.0,
        "specialised_bits_per_byte": 1.1, "bits_per_byte_delta": 0.1})


# --------------------------------------------------------------------------- teacher scores


@pytest.fixture
def teacher(tok):
    return causal_lm("llama", len(tok)), Prompt.build(LABELS), make_sentences(9, seed=5)


def test_class_log_scores_drop_into_the_kd_loss(teacher, tok):
    """Same shape and meaning as an encoder's logits: a student that outputs them has zero
    KL, and the soft targets are the softmax over classes of the log-scores."""
    model, prompt, split = teacher
    scores = class_log_scores(model, tok, prompt, split, MAX_LENGTH)
    loss = losses.DistillLoss(scores, alpha=0.0, temperature=2.0)
    out = type("Out", (), {"logits": torch.from_numpy(scores) + 5.0})  # softmax ignores shifts
    assert loss(out, torch.full((9,), -1), list(range(9)), {}).item() == pytest.approx(0, abs=1e-6)
    p = torch.softmax(torch.from_numpy(scores), -1)
    verb = torch.exp(torch.from_numpy(scores))
    torch.testing.assert_close(p, verb / verb.sum(-1, keepdim=True))
