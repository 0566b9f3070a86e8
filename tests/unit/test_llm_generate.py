"""Generation variants of a causal LM (distillery.llm) on a tiny random Llama: export with a KV
cache, weight recipes, greedy generation against torch, the lm-eval adapter's three request
types against the pipeline's own numbers, the specialised model rebuilt from its classifier form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from transformers import LlamaConfig, LlamaForCausalLM

from distillery.config.base import load_section
from distillery.config.llm import LlmParams
from distillery.core.io import UserError
from distillery.llm import answers, models, recipes, validate
from distillery.llm.export import eos_ids, export
from distillery.llm.runtime import OrtLM, TorchLM, log_softmax
from distillery.lmeval.decoder import DecoderLM
from distillery.teachers.causal import classifier
from distillery.teachers.causal.prompt import Prompt, encode_requests
from tests.unit.llm_toys import bpe_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random Llama (sizes that 32-blocks divide), its tokenizer and its fp32 decoder."""
    torch.manual_seed(0)
    tok = bpe_tokenizer(bos=False)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        initializer_range=0.2, bos_token_id=1, eos_token_id=2)).eval()
    folder = tmp_path_factory.mktemp("llm")
    export(model, tok, folder / "fp32.onnx")
    return model, tok, folder


def test_decoder_logits_and_cache_equal_torch(tiny):
    model, tok, folder = tiny
    ort_lm, torch_lm = OrtLM(folder / "fp32.onnx"), TorchLM(model, eos_ids(model, tok))
    ids = tok.encode("Review: a fine and moving film\nSentiment:")
    full = ort_lm.logits(ids)
    np.testing.assert_allclose(full, torch_lm.logits(ids), atol=1e-4)
    # prefill half, then one token at a time through the cache: the same logits
    logits, state = ort_lm._step(ids[:5], None)
    steps = [logits[-1]]
    for t in ids[5:]:
        logits, state = ort_lm._step([t], state)
        steps.append(logits[-1])
    np.testing.assert_allclose(np.stack(steps), full[4:], atol=1e-4)
    for text in ("the film", "Review: dull\nSentiment:", "a b c"):
        prompt = tok.encode(text)
        assert ort_lm.greedy(prompt, 12).tokens == torch_lm.greedy(prompt, 12).tokens


@pytest.mark.parametrize("name", ["int8", "int4", "int4_hqq"])
def test_recipes_write_smaller_files_that_generate(tiny, name):
    _, tok, folder = tiny
    src, dst = folder / "fp32.onnx", folder / f"{name}.onnx"
    recipes.RECIPES.lookup(name)(src, dst, 32)
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    lm, ref = OrtLM(dst), OrtLM(src)
    ids = tok.encode("Review: a fine and moving film\nSentiment:")
    a, b = log_softmax(lm.logits(ids)), log_softmax(ref.logits(ids))
    kl = float((np.exp(b) * (b - a)).sum(-1).mean())
    assert kl < (0.01 if name == "int8" else 0.5)  # random weights: int4 is coarse
    assert len(lm.greedy(ids, 8, stop_at_eos=False).tokens) == 8


def test_unknown_recipe_is_one_message():
    with pytest.raises(UserError, match="unknown LLM weight recipe 'int3'; available: fp32"):
        recipes.RECIPES.lookup("int3")


def test_adapter_equals_pipeline_on_all_three_request_types(tiny):
    model, tok, folder = tiny
    lm = OrtLM(folder / "fp32.onnx")
    prompt = Prompt.build(["negative", "positive"])
    texts = ["a fine and moving film", "dull", "the plot is a mess but the cast is good"]
    requests = encode_requests(tok, prompt, texts, None)
    pipeline = validate.class_scores(lm, requests, max_length=12)
    adapter = DecoderLM(lm, tok, max_length=12)
    asked = [Instance("loglikelihood", {}, (prompt.context(t), v), 0)
             for t in texts for v in prompt.verbalizers]
    got = np.array([ll for ll, _ in adapter.loglikelihood(asked)]).reshape(len(texts), 2)
    np.testing.assert_array_equal(got, pipeline)
    # perplexity: several windows of 16 tokens, the same summed log-likelihood
    docs = ["The wine data set has thirteen attributes measured on three cultivars. " * 3]
    ppl = validate.perplexity(lm, tok, docs, max_length=16, prefix=adapter.prefix_token_id)
    rolled = DecoderLM(lm, tok, max_length=16).loglikelihood_rolling(
        [Instance("loglikelihood_rolling", {}, (docs[0],), 0)])
    assert rolled[0] == pytest.approx(ppl["log_likelihood"], rel=1e-12)
    # generate_until: greedy, cut at the stop string
    ctx = "Review: dull\nSentiment:"
    full = tok.decode(lm.greedy(tok.encode(ctx), 10).tokens, skip_special_tokens=True)
    gen = DecoderLM(lm, tok, max_length=64)  # room for the context and 10 new tokens
    out = gen.generate_until([Instance("generate_until", {}, (ctx, {
        "until": ["\n"], "max_gen_toks": 10}), 0)])
    assert out == [full.split("\n")[0]]
    with pytest.raises(UserError, match="only greedy"):
        gen.generate_until([Instance("generate_until", {}, (ctx, {"do_sample": True}), 0)])


def test_windows_predict_every_token_once():
    tokens = list(range(10, 47))
    wins = validate.windows(tokens, prefix=1, max_length=8)
    assert [t for _, targets in wins for t in targets] == tokens
    assert all(len(inp) <= 8 and len(t) <= len(inp) for inp, t in wins)
    assert wins[1][0] == tokens[7:15]  # a full window of context before the next targets


def test_specialised_rebuilt_from_classifier_form(tiny, tmp_path):
    model, tok, _ = tiny
    base = tmp_path / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    tuned = LlamaForCausalLM(model.config).eval()
    tuned.load_state_dict(model.state_dict())
    with torch.no_grad():  # what LoRA changes: a projection
        tuned.model.layers[0].self_attn.q_proj.weight.add_(0.05)
    prompt = Prompt.build(["negative", "positive"])
    form, form_tok, _ = classifier.to_sequence_classifier(tuned, tok, prompt)
    classifier.save(form, form_tok, tmp_path / "teacher")
    got, _, got_prompt = models.load_specialised(str(base), tmp_path / "teacher")
    assert got_prompt.verbalizers == prompt.verbalizers
    for a, b in zip(got.state_dict().values(), tuned.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    other = LlamaForCausalLM(model.config)  # another base: its LM head differs
    other.save_pretrained(tmp_path / "other")
    tok.save_pretrained(tmp_path / "other")
    with pytest.raises(UserError, match="LM head"):
        models.load_specialised(str(tmp_path / "other"), tmp_path / "teacher")


def test_answers_parse_and_summary():
    prompt = Prompt.build(["negative", "positive"])
    assert answers.parse_label(" positive\nReview: x", prompt) == 1
    assert answers.parse_label("Negative.", prompt) == 0
    assert answers.parse_label("\n\n  positive!", prompt) == 1
    assert answers.parse_label("I think it is positive", prompt) is None
    assert answers.parse_label("positively", prompt) is None
    items = [answers.PromptItem("label", "t", "c", 1), answers.PromptItem("label", "t", "c", 0),
             answers.PromptItem("label", "t", "c", 0), answers.PromptItem("open", "q", "q")]
    s = answers.summary([" positive", " positive", "no idea", "anything"], items, prompt)
    assert s == {"answered": 2, "answer_failure_rate": pytest.approx(1 / 3),
                 "answer_accuracy": 0.5}
    md = answers.table(items, {"a": ["positive", "negative", "hmm", "x|y"]}, prompt)
    assert "(✓)" in md and "(no label)" in md and "x\\|y" in md


def test_params_checked(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("llm:\n  variants: [fp32, int3]\n  block_size: 24\n  min_agreement: 1.5\n")
    with pytest.raises(UserError) as err:
        load_section(f, "llm", LlmParams)
    msg = str(err.value)
    assert "variants" in msg and "int3" in msg and "block_size" in msg and "min_agreement" in msg


def test_demo_generation_view(tiny, tmp_path):
    from distillery.serve import generate

    model, tok, folder = tiny
    llm_dir = tmp_path / "llm"
    llm_dir.mkdir()
    (llm_dir / "specialised-onnx-fp32.onnx").write_bytes((folder / "fp32.onnx").read_bytes())
    tok.save_pretrained(llm_dir / "tokenizer")
    gen = generate.Generator(llm_dir)
    answer, timing = gen.generate("specialised-onnx-fp32", "Review: dull\nSentiment:", 6,
                                  chat=False)
    ids = tok.encode("Review: dull\nSentiment:")
    assert answer == tok.decode(TorchLM(model, eos_ids(model, tok)).greedy(ids, 6).tokens,
                                skip_special_tokens=True)
    assert "tokens/s" in timing
    assert gen.generate("specialised-onnx-fp32", "x" * 20_001, 6)[1].startswith(
        "The prompt is 20,001 characters long")
    with pytest.raises(UserError, match="unknown LLM variant"):
        gen.model("nope")
    assert generate.build_ui(gen) is not None


def test_lm_eval_runs_a_generation_task(tiny, tmp_path):
    """A ``generate_until`` task through lm-eval's own ``simple_evaluate``: the answers it logs
    are the pipeline's greedy ones, cut at the stop string."""
    import json

    import yaml

    from distillery.lmeval.harness import run

    _, tok, folder = tiny
    lm = OrtLM(folder / "fp32.onnx")
    prompts = ["Review: dull\nSentiment:", "Review: a fine film\nSentiment:"]
    data = tmp_path / "gen.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "answer": " negative"}) + "\n"
                            for p in prompts))
    (tmp_path / "tiny_gen.yaml").write_text(yaml.safe_dump({
        "task": "tiny_gen", "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
        "output_type": "generate_until", "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{answer}}",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": 8, "do_sample": False},
        "metric_list": [{"metric": "exact_match"}]}))
    out = run(DecoderLM(lm, tok, max_length=64), [tmp_path / "tiny_gen.yaml"], log_samples=True)
    assert "exact_match,none" in out["results"]["tiny_gen"]
    logged = {s["doc"]["prompt"]: s["resps"][0][0] for s in out["samples"]["tiny_gen"]}
    for p in prompts:
        full = tok.decode(lm.greedy(tok.encode(p), 8).tokens, skip_special_tokens=True)
        assert logged[p] == full.split("\n")[0]


def test_peak_rss_of_a_child_is_its_own(tiny):
    """``ru_maxrss`` survives ``exec`` (a child would report its parent's peak); ``VmHWM``
    does not: a child that loads a tiny decoder reports far less than a 200 MB parent."""
    from distillery.llm import bench

    _, _, folder = tiny
    ballast = bytearray(200 * 1024 * 1024)  # noqa: F841 (raises this process's peak)
    child = bench.peak_rss_mb(["--onnx", str(folder / "fp32.onnx"), "--prompt-tokens", "4",
                               "--new-tokens", "2"])
    assert 0 < child < bench.peak_rss_kb() / 1024 - 150


def test_max_length_beyond_the_position_embeddings_is_one_message(tiny, tmp_path,
                                                                   tiny_teacher_dir):
    from distillery.config.teacher import TeacherParams
    from distillery.teachers.causal import teacher

    model, tok, _ = tiny
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    assert teacher.check(TeacherParams(model=str(tmp_path / "lm"), max_length=256)) == "causal"
    with pytest.raises(UserError, match=r"teacher.max_length: got 257, but this llama model "
                                        r"embeds at most 256 positions"):
        teacher.check(TeacherParams(model=str(tmp_path / "lm"), max_length=257))
    with pytest.raises(UserError, match="teacher.max_length: got 100000"):
        teacher.check(TeacherParams(model=str(tiny_teacher_dir), max_length=100_000))
