"""Tests of ``distillery.lmeval``: lm-eval's ``acc`` of a classifier (torch folder and ONNX
file, single sentences and sentence pairs) equals the project's own accuracy, the adapter's
log-likelihoods are the class log-probabilities, and bad prompts / verbalizers fail with one
message naming the key.

Everything is offline: tiny random BERTs, tiny jsonl splits made here, lm-eval's task from the
local file through the ``datasets`` json builder (network connections are refused while the
harness runs), caches inside the test's task folder.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from transformers import BertForSequenceClassification  # noqa: E402

from distillery.core.io import UserError, run_main  # noqa: E402
from distillery.data.prepared import Split, model_inputs, read_split, write_labels, write_split  # noqa: E402
from distillery.export import onnx_export  # noqa: E402
from distillery.lmeval import ClassifierLM, TaskSpec, cli, read_task, score, write_task  # noqa: E402
from distillery.lmeval.task import check_docs, default_prompt, default_verbalizers  # noqa: E402
from distillery.measure import bench, evaluate  # noqa: E402
from distillery.modeling import loading, training  # noqa: E402
from distillery.modeling.training import TrainConfig  # noqa: E402
from tests.conftest import PAIR_KEYWORDS, make_pairs, make_sentences, tiny_config  # noqa: E402

MAX_LENGTH = 32
SENTIMENT = ["negative", "positive"]
NLI = sorted(PAIR_KEYWORDS)  # contra, entail, neutral


# --------------------------------------------------------------------------- fixtures


def _prepared(folder: Path, split: Split, names: list[str]) -> Path:
    write_split(folder / "eval.jsonl", split)
    write_labels(folder / "labels.json", names, pair=split.pairs is not None)
    return folder


def _classifier(folder: Path, tokenizer, names: list[str], split: Split, steps: int) -> Path:
    """A tiny BERT with these labels, trained for a few steps on ``split`` (so that its
    predictions vary and are neither all right nor all wrong), saved with the tokenizer."""
    torch.manual_seed(0)
    config = tiny_config(num_labels=len(names), id2label=dict(enumerate(names)),
                         label2id={n: i for i, n in enumerate(names)})
    model = BertForSequenceClassification(config)
    training.train(model, split, tokenizer, TrainConfig(lr=1e-2, batch_size=32,
                                                        max_length=MAX_LENGTH, steps=steps),
                   desc=None)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """20 sentences in 2 classes, a torch classifier and its ONNX export with the metadata
    stage ``export`` writes (labels, inputs, max_length, sentence_pair)."""
    root = tmp_path_factory.mktemp("lmeval_single")
    split = make_sentences(20, seed=3)
    out = {"data": _prepared(root / "data", split, SENTIMENT),
           "torch": _classifier(root / "model", tiny_tokenizer, SENTIMENT, split, steps=5),
           "onnx": root / "model.onnx"}
    inputs = model_inputs(tiny_tokenizer, pair=False)
    meta = {"labels": json.dumps(SENTIMENT), "inputs": json.dumps(inputs),
            "max_length": str(MAX_LENGTH), "sentence_pair": "false"}
    onnx_export.export(loading.load_classifier(str(out["torch"])), out["onnx"], opset=18,
                       input_names=inputs, metadata=meta)
    return out


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """18 sentence pairs in 3 classes and a torch classifier for them."""
    root = tmp_path_factory.mktemp("lmeval_pairs")
    split = make_pairs(18, seed=4)
    return {"data": _prepared(root / "data", split, NLI),
            "torch": _classifier(root / "model", tiny_tokenizer, NLI, split, steps=10)}


@pytest.fixture
def offline(monkeypatch, tmp_path) -> Path:
    """Refuse every network connection and run from an empty working directory."""
    def refuse(*args, **kwargs):
        raise OSError("a network connection was attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _spec(data: Path, names: list[str], **overrides) -> TaskSpec:
    pair = names == NLI
    kw = dict(name="tiny", prompt=default_prompt(pair), verbalizers=default_verbalizers(names),
              labels=names, pair=pair, data_file=str(data / "eval.jsonl"))
    kw.update(overrides)
    return TaskSpec(**kw)


def _project_logits(kind: str, model: Path, data: Path, tokenizer) -> tuple[np.ndarray, Split]:
    """Logits the project itself computes (what stage ``benchmark`` scores), and the split."""
    split = read_split(data / "eval.jsonl")
    if kind == "onnx":
        session = bench.ort_session(str(model), "cpu")
        return evaluate.onnx_logits(session, split, tokenizer, MAX_LENGTH, batch_size=1), split
    classifier = loading.load_classifier(str(model))
    return evaluate.predict_logits(classifier, split, tokenizer, MAX_LENGTH), split


# --------------------------------------------------------------------------- harness == project


@pytest.mark.parametrize(("kind", "task", "num_fewshot"), [
    ("torch", "single", None), ("onnx", "single", None), ("torch", "pair", None),
    ("torch", "single", 3), ("torch", "pair", 2),
], ids=["torch", "onnx", "torch-pairs", "torch-3-shot", "torch-pairs-2-shot"])
def test_lm_eval_accuracy_equals_project_accuracy(kind, task, num_fewshot, single, pairs,
                                                  tiny_tokenizer, offline, tmp_path):
    case, names = (single, SENTIMENT) if task == "single" else (pairs, NLI)
    prompt = "Review: {text}\nSentiment:" if task == "single" else default_prompt(True)
    logits, split = _project_logits(kind, case[kind], case["data"], tiny_tokenizer)
    assert len(np.unique(logits.argmax(-1))) > 1  # a constant classifier would prove little
    expected = evaluate.accuracy(logits, split.labels)
    assert 0 < expected < 1

    model_args = {"path": str(case[kind])}  # the ONNX file records max_length itself
    model_args |= {"tokenizer": str(case["torch"])} if kind == "onnx" else {"max_length": 32}
    task_yaml = write_task(tmp_path / "task", _spec(case["data"], names, prompt=prompt))
    got = score(task_yaml, model_args, num_fewshot=num_fewshot, batch_size=8)

    assert got["n"] == len(split)
    assert got["acc"] == pytest.approx(expected, abs=1e-6)
    assert (tmp_path / "task" / "hf_datasets_cache").is_dir()  # the datasets cache stays here
    assert list(offline.iterdir()) == []  # nothing written to the working directory


def test_limit_scores_the_first_examples(single, tiny_tokenizer, offline, tmp_path):
    logits, split = _project_logits("torch", single["torch"], single["data"], tiny_tokenizer)
    task_yaml = write_task(tmp_path / "task", _spec(single["data"], SENTIMENT))
    got = score(task_yaml, {"path": str(single["torch"]), "max_length": MAX_LENGTH}, limit=7)
    assert got["n"] == 7
    assert got["acc"] == pytest.approx(evaluate.accuracy(logits[:7], split.labels[:7]), abs=1e-6)


# --------------------------------------------------------------------------- the adapter


@pytest.fixture(scope="module")
def pair_lm(pairs, tmp_path_factory) -> ClassifierLM:
    task = write_task(tmp_path_factory.mktemp("pair_task"), _spec(pairs["data"], NLI))
    return ClassifierLM(path=str(pairs["torch"]), task=str(task), max_length=MAX_LENGTH)


def _request(context: str, continuation: str, doc: dict | None = None) -> Instance:
    return Instance(request_type="loglikelihood", doc=doc or {}, arguments=(context, continuation),
                    idx=0, metadata=("tiny", 0, 1))


def test_loglikelihoods_are_class_log_probabilities(pair_lm, pairs, tiny_tokenizer):
    logits, split = _project_logits("torch", pairs["torch"], pairs["data"], tiny_tokenizer)
    logp = torch.log_softmax(torch.from_numpy(logits).double(), -1).numpy()  # (N, C)
    spec = pair_lm.spec
    shots = spec.render(split.texts[1], split.pairs[1]) + spec.verbalizers[0] + "\n\n"
    requests, expected = [], []
    for i in (0, 5, 11):
        context = spec.render(split.texts[i], split.pairs[i])
        for c, verbalizer in enumerate(spec.verbalizers):
            requests.append(_request(context, verbalizer, {"text": split.texts[i]}))
            requests.append(_request(shots + context, verbalizer))  # few-shot prefix
            expected += [(logp[i, c], c == logits[i].argmax())] * 2
    got = pair_lm.loglikelihood(requests)
    assert [g[1] for g in got] == [e[1] for e in expected]
    np.testing.assert_allclose([g[0] for g in got], [e[0] for e in expected], atol=1e-6)


@pytest.mark.parametrize(("context", "continuation", "match"), [
    ("not in the data\nQuestion: no\nAnswer:", " contra", "no example of .* renders"),
    (None, " yes", "continuation ' yes' is none of the task's verbalizers"),
], ids=["unknown-context", "unknown-continuation"])
def test_requests_the_task_does_not_make(pair_lm, pairs, context, continuation, match):
    split = read_split(pairs["data"] / "eval.jsonl")
    context = context or pair_lm.spec.render(split.texts[0], split.pairs[0])
    with pytest.raises(UserError, match=match):
        pair_lm.loglikelihood([_request(context, continuation)])


@pytest.mark.parametrize("method", ["loglikelihood_rolling", "generate_until"])
def test_generation_and_perplexity_are_not_implemented(pair_lm, method):
    with pytest.raises(NotImplementedError, match="multiple_choice tasks"):
        getattr(pair_lm, method)([_request("a", "b")])


def test_model_whose_classes_are_not_the_tasks(single, pairs, tmp_path):
    task = write_task(tmp_path, _spec(pairs["data"], NLI))
    with pytest.raises(UserError, match="has 2 classes .* the task tiny has 3"):
        ClassifierLM(path=str(single["torch"]), task=str(task), max_length=MAX_LENGTH)
    reordered = write_task(tmp_path / "r", _spec(single["data"], SENTIMENT[::-1],
                                                 verbalizers=[" bad", " good"]))
    with pytest.raises(UserError, match="orders its classes .* class ids would not match"):
        ClassifierLM(path=str(single["torch"]), task=str(reordered), max_length=MAX_LENGTH)


def test_onnx_file_for_single_texts_refuses_a_pair_task(single, pairs, tmp_path):
    task = write_task(tmp_path, _spec(pairs["data"], NLI, labels=SENTIMENT + ["x"]))
    with pytest.raises(UserError, match="has 2 classes"):
        ClassifierLM(path=str(single["onnx"]), task=str(task), tokenizer=str(single["torch"]))
    task = write_task(tmp_path / "p", _spec(pairs["data"], NLI, labels=SENTIMENT,
                                            verbalizers=[" a", " b"]))
    with pytest.raises(UserError, match="exported for single texts"):
        ClassifierLM(path=str(single["onnx"]), task=str(task), tokenizer=str(single["torch"]))


@pytest.mark.parametrize(("args", "match"), [
    ({"tokenizer": None}, "tokenizer: .* carries no tokenizer"),
    ({"pretrained": "x"}, "model_args: unknown pretrained"),
    ({"path": "nowhere"}, "path: 'nowhere' is neither a model folder"),
], ids=["onnx-without-tokenizer", "unknown-arg", "missing-model"])
def test_bad_model_args(single, tmp_path, args, match):
    task = write_task(tmp_path, _spec(single["data"], SENTIMENT))
    kwargs = {"path": str(single["onnx"]), "task": str(task), "tokenizer": str(single["torch"])}
    with pytest.raises(UserError, match=match):
        ClassifierLM(**(kwargs | args))


def test_torch_folder_needs_max_length(single, tmp_path):
    task = write_task(tmp_path, _spec(single["data"], SENTIMENT))
    with pytest.raises(UserError, match="max_length: .* does not record"):
        ClassifierLM(path=str(single["torch"]), task=str(task))


# --------------------------------------------------------------------------- the task


def test_task_yaml_is_lm_eval_multiple_choice(single, tmp_path):
    from lm_eval.tasks._yaml_loader import load_yaml

    spec = _spec(single["data"], SENTIMENT, prompt="{{raw}} Review: {text} %}}\nSentiment:")
    path = write_task(tmp_path, spec)
    config = load_yaml(path, resolve_func=True)  # what `lm_eval run --tasks <yaml>` does
    assert config["output_type"] == "multiple_choice"
    assert config["doc_to_choice"] == [" negative", " positive"]
    assert config["doc_to_target"] == "label" and config["target_delimiter"] == ""
    assert config["dataset_path"] == "json"
    assert config["dataset_kwargs"]["data_files"] == {"test": str(single["data"] / "eval.jsonl")}
    assert config["metric_list"][0]["metric"] == "acc"
    assert config["process_docs"] is check_docs  # importing it registered the model
    from lm_eval.api.registry import get_model
    assert get_model("distillery") is ClassifierLM
    from lm_eval.utils import apply_template
    doc = {"text": "a {{b}} c"}
    assert apply_template(config["doc_to_text"], doc) == "{raw} Review: a {{b}} c %}\nSentiment:"
    assert read_task(tmp_path) == read_task(path)
    assert read_task(path).data_file == str(single["data"] / "eval.jsonl")


GOOD = dict(prompt="Review: {text}\nSentiment:", verbalizers=[" negative", " positive"])


@pytest.mark.parametrize(("pair", "overrides", "match"), [
    (False, {"prompt": "Review:\nSentiment:"}, r"prompt: .* has no \{text\} placeholder"),
    (True, {"prompt": "Premise: {text}\nLabel:"}, r"prompt: .* has no \{text_pair\} placeholder"),
    (False, {"prompt": "A: {text}\nB: {text_pair}"}, r"uses \{text_pair\} but the data are single"),
    (False, {"prompt": "Review: {sentence}"}, r"placeholder \{sentence\} is not allowed"),
    (False, {"prompt": "Review: {text!r}"}, r"placeholder \{text!r\} is not allowed"),
    (False, {"prompt": "Review: {text"}, "prompt: .* is not a format string"),
    (False, {"prompt": "{text}"}, "needs some text besides the placeholders"),
    (False, {"verbalizers": [" negative", "  "]}, r"verbalizers\[1\]: '  ' is empty"),
    (False, {"verbalizers": [" negative", ""]}, r"verbalizers\[1\]: '' is empty"),
    (False, {"verbalizers": [" good", "good"]},
     "labels 'negative' and 'positive' have the same verbalizer 'good'"),
    (False, {"verbalizers": [" negative"]}, r"verbalizers: 1 given for 2 labels"),
    (False, {"verbalizers": [" a", " b", " c"]}, r"verbalizers: 3 given for 2 labels"),
    (False, {"name": "my task"}, "task_name: got 'my task'"),
], ids=["no-text", "pair-without-text-pair", "text-pair-in-single", "unknown-placeholder",
        "conversion", "lone-brace", "placeholder-only", "blank-verbalizer", "empty-verbalizer",
        "duplicate-verbalizers", "too-few-verbalizers", "too-many-verbalizers", "bad-name"])
def test_bad_task_input_is_one_clear_error(single, tmp_path, pair, overrides, match):
    labels = SENTIMENT
    spec = _spec(single["data"], labels, **(GOOD | {"pair": pair} | overrides))
    with pytest.raises(UserError, match=match):
        write_task(tmp_path, spec)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_every_problem_in_one_message(single):
    spec = _spec(single["data"], SENTIMENT, prompt="Review:", verbalizers=[" x", " x", " y"])
    with pytest.raises(UserError) as err:
        spec.validate(where="lmeval.")
    lines = str(err.value).splitlines()
    assert len(lines) == 4  # header + three problems
    assert [line.split(":")[0].strip(" -") for line in lines[1:]] == [
        "lmeval.prompt", "lmeval.verbalizers", "lmeval.verbalizers"]


def test_cli_prints_lm_eval_accuracy(single, tiny_tokenizer, offline, capsys):
    logits, split = _project_logits("onnx", single["onnx"], single["data"], tiny_tokenizer)
    cli.main(["--model", str(single["onnx"]), "--tokenizer", str(single["torch"]),
              "--data", str(single["data"]), "--prompt", r"Review: {text}\nSentiment:",
              "--verbalizers", " bad", " good", "--task-dir", "task", "--metrics", "m.json"])
    expected = evaluate.accuracy(logits, split.labels)
    assert f"acc = {expected:.6f}" in capsys.readouterr().out
    assert json.loads((offline / "m.json").read_text())["acc"] == pytest.approx(expected, abs=1e-6)
    kept = read_task(offline / "task")
    assert (kept.prompt, kept.verbalizers) == ("Review: {text}\nSentiment:", [" bad", " good"])


def test_cli_user_error_is_a_message_without_traceback(single, capsys):
    argv = ["--model", str(single["torch"]), "--data", str(single["data"]), "--prompt", "x",
            "--verbalizers", " a", " a", "--max-length", "32"]
    with pytest.raises(SystemExit) as exit_:
        run_main(lambda: cli.main(argv))
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.startswith("error: invalid lm-eval task:") and "Traceback" not in err
    assert "prompt: 'x' has no {text}" in err and "same verbalizer 'a'" in err


def test_onnx_backend_scores_one_text_at_a_time_as_the_benchmark(single, tiny_tokenizer,
                                                                 tmp_path):
    """Dynamic int8 scales activations per call: whatever batch lm-eval asks for, the ONNX
    backend scores texts one by one, as stage ``benchmark`` and the served file do."""
    from distillery.export import quantize
    from distillery.lmeval.backends import OnnxBackend

    int8 = tmp_path / "int8.onnx"
    quantize.apply("dynamic", single["onnx"], int8, model_type="bert", num_heads=0,
                   hidden_size=0)
    split = read_split(single["data"] / "eval.jsonl")
    backend = OnnxBackend(str(int8), str(single["torch"]))
    want = evaluate.onnx_logits(bench.ort_session(str(int8), "cpu"), split, tiny_tokenizer,
                                MAX_LENGTH, batch_size=1)
    np.testing.assert_array_equal(backend.logits(split, MAX_LENGTH, batch_size=8), want)
