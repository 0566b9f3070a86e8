"""The demo / Space page logic: the app's tokenizers-only ONNX path gives the pipeline's answer,
and bad input ends as a message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distillery.data import prepared
from distillery.measure import evaluate
from distillery.modeling.loading import load_tokenizer
from distillery.serve import space_app


@pytest.fixture(params=["single", "pair"])
def run_dir(request, tiny_run_dir, tiny_pair_run_dir):
    return tiny_run_dir if request.param == "single" else tiny_pair_run_dir


def app_model(run) -> space_app.OnnxClassifier:
    return space_app.OnnxClassifier(run / "models/onnx/student.onnx",
                                    run / "models/student/tokenizer.json")


def test_onnx_classifier_equals_pipeline(run_dir):
    """Same token ids as prepared.encode, same probabilities as evaluate.onnx_logits (batch 1)."""
    model = app_model(run_dir)
    split = prepared.read_split(run_dir / "data/prepared/eval.jsonl")
    tok = load_tokenizer(str(run_dir / "models/student"))
    logits = evaluate.onnx_logits(model.session, split, tok, model.max_length, batch_size=1)
    for i, text in enumerate(split.texts):
        pair = None if split.pairs is None else split.pairs[i]
        feeds, _ = model.encode(text, pair)
        ref = prepared.encode(tok, [text], None if pair is None else [pair], model.max_length,
                          return_tensors="np")
        assert set(feeds) == set(model.inputs)
        for k, v in feeds.items():
            np.testing.assert_array_equal(v, ref[k])
        p = model.predict(text, pair)
        probs = np.array([p.probs[n] for n in model.labels])
        np.testing.assert_allclose(probs, space_app.softmax(logits[i].astype(np.float64)),
                                   atol=1e-6)
        assert p.label == model.labels[int(logits[i].argmax())] and p.ms > 0
    assert model.sentence_pair == (split.pairs is not None)
    assert model.name == "student-onnx-fp32"


def test_truncation_is_reported(tiny_run_dir):
    model = app_model(tiny_run_dir)
    short = model.predict("the film is good")
    assert not short.truncated
    line, (answer,) = space_app.classify([model], " ".join(["good"] * 40))
    assert answer.truncated and answer.tokens == 42  # 40 words + [CLS] + [SEP]
    assert line == "The input is 42 tokens long; the models read only the first 16 " \
                   "(the rest is truncated)."


class Broken:
    name, description, labels, max_length, sentence_pair = "broken", "", ["a", "b"], 8, False

    def predict(self, text, pair=None):
        raise RuntimeError("session died")


def test_bad_input_is_a_message(tiny_run_dir, tiny_pair_run_dir):
    model = app_model(tiny_run_dir)
    assert space_app.classify([model], "   ") == ("Type a sentence first.", [""])
    assert space_app.classify([model], None)[0] == "Type a sentence first."
    pair_model = app_model(tiny_pair_run_dir)
    line, _ = space_app.classify([pair_model], "the film", "")
    assert "second sentence" in line
    line, (ok, broken) = space_app.classify([model, Broken()], "the film is good")
    assert line == "" and isinstance(ok, space_app.Prediction)
    assert broken == "broken failed: session died"


def test_missing_or_bare_model_files(tmp_path, tiny_run_dir):
    tokenizer = tiny_run_dir / "models/student/tokenizer.json"
    with pytest.raises(FileNotFoundError, match="model file .*nothing.onnx not found"):
        space_app.OnnxClassifier(tmp_path / "nothing.onnx", tokenizer)
    import onnx

    bare = onnx.load(tiny_run_dir / "models/onnx/student.onnx")
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match=r"lacks metadata \['labels', 'max_length'\]"):
        space_app.OnnxClassifier(tmp_path / "bare.onnx", tokenizer)


def test_read_examples(tmp_path):
    assert space_app.read_examples(tmp_path / "none.jsonl") == []
    rows = [{"text": "a", "note": "x"}, {"text": "b", "text_pair": "c"}]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert space_app.read_examples(tmp_path / "e.jsonl") == rows


def test_page_builds(tiny_run_dir, tiny_pair_run_dir):
    """One column per model, a second text box for pairs (no server started)."""
    single = space_app.build_ui([app_model(tiny_run_dir)], [{"text": "the film", "note": "n"}])
    pair = space_app.build_ui([app_model(tiny_pair_run_dir)], [{"text": "a", "text_pair": "b"}])
    assert {"text", "classify", "result-0", "probs-0", "note"} <= elem_ids(single)
    assert "text-pair" not in elem_ids(single) and "text-pair" in elem_ids(pair)


def elem_ids(ui) -> set[str | None]:
    return {getattr(b, "elem_id", None) for b in ui.blocks.values()}


class Counting:
    """A stand-in for a tokenizer that counts the texts it tokenises."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, []

    def encode(self, text, *args, **kwargs):
        self.texts.append(text)
        return self.tokenizer.encode(text, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_encoder_tokenises_each_text_once(tiny_pair_run_dir):
    """A truncated pair: each sentence tokenised once, then cut by post-processing alone; the
    feeds and the count equal those of the untruncated and truncating tokenizers."""
    model = app_model(tiny_pair_run_dir)
    text, pair = " ".join(["good"] * 30), "the film is dull"
    want = model.encode(text, pair)
    model.encode.full = Counting(model.encode.full)
    model.encode.truncating = Counting(model.encode.truncating)
    feeds, tokens = model.encode(text, pair)
    assert model.encode.full.texts == [text, pair] and model.encode.truncating.texts == []
    assert tokens == want[1] == len(model.encode.full.tokenizer.encode(text, pair).ids) == 37
    ref = model.encode.truncating.tokenizer.encode(text, pair)
    np.testing.assert_array_equal(feeds["input_ids"][0], ref.ids)
    assert feeds["input_ids"].shape == (1, 16)


def test_oversize_input_is_refused_before_tokenising(tiny_run_dir, tiny_pair_run_dir):
    """Over the cap (both sentences together): a message at once, no model or tokenizer runs."""
    import time

    model = app_model(tiny_run_dir)
    model.encode.full = Counting(model.encode.full)
    paste = "the film is good " * (2**20 // 17)  # about 1 MB
    start = time.perf_counter()
    line, answers = space_app.classify([model, Broken()], paste)
    assert time.perf_counter() - start < 0.05
    assert line == (f"The input is {len(paste):,} characters long; this page takes at most "
                    "10,000 (the models read only the first 16 tokens): shorten it.")
    assert answers == ["", ""] and model.encode.full.texts == []
    line, (answer,) = space_app.classify([model], "good " * 20, max_chars=100)
    assert answer.truncated and line.startswith("The input is 22 tokens long")  # at the cap
    assert space_app.classify([model], "good " * 20 + "!", max_chars=100)[0].startswith(
        "The input is 101 characters long; this page takes at most 100 ")
    pair_model = app_model(tiny_pair_run_dir)
    line, _ = space_app.classify([pair_model], "a" * 60, "b" * 41, max_chars=100)
    assert line.startswith("The input is 101 characters long")


def test_encoder_is_safe_to_share(tiny_run_dir):
    """The encoder's tokenizers keep their settings, so threads can share a model; every
    answer equals the answer of the same call made alone."""
    from concurrent.futures import ThreadPoolExecutor

    model = app_model(tiny_run_dir)
    texts = ["the film is good", " ".join(["good"] * 40), "dull", " ".join(["bad"] * 25)] * 16
    alone = [model.encode(t) for t in texts]
    predicted = [model.predict(t) for t in texts]
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(model.encode, texts))
        answers = list(pool.map(model.predict, texts))
    for (a, n), (b, m) in zip(alone, together, strict=True):
        assert n == m and all(np.array_equal(a[k], b[k]) for k in a)
    for p, q in zip(predicted, answers, strict=True):
        assert (p.label, p.probs, p.tokens, p.truncated) == (q.label, q.probs, q.tokens,
                                                              q.truncated)
    assert [n for _, n in alone[:4]] == [6, 42, 3, 27]
    assert model.encode.truncating.truncation["max_length"] == model.max_length
    assert model.encode.full.truncation is None


def test_space_readme_pins_the_python_of_its_requirements():
    """The Space's header names this interpreter's Python, which every pinned package accepts
    (numpy 2.4 needs 3.11+: the hosting default, 3.10, would not build)."""
    import sys

    import yaml

    from distillery.serve import space

    numbers = {"accuracy": 0.5, "macro_f1": 0.5, "latency_ms_p50": 1.0, "latency_ms_p95": 2.0,
               "throughput_per_s": 100.0, "size_mb": 0.3}
    card = space.readme("T", "student-onnx-int8", {"student-onnx-int8": numbers}, ["a", "b"],
                        "accuracy", 0.5)
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert '\npython_version: "3.' in card  # quoted: 3.10 unquoted would read as 3.1
    assert header["sdk_version"] == space.requirements().split()[0].split("==")[1]
    with pytest.raises(RuntimeError, match=r"requires Python >=3\.11, this is 3\.10: the env"):
        space.python_version("3.10")
