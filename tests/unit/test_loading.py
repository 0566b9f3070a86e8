"""Tests of the Hub ``revision`` pins (``teacher.revision``, ``distill.student_revision``) in the
model-loading paths (:mod:`distillery.modeling.loading`, :mod:`distillery.teachers.causal.loading`).

No network: ``from_pretrained`` is replaced by recorders that return tiny objects, so the
tests check what the calls receive; a local folder ignores the revision with one warning.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import BertForSequenceClassification, LlamaConfig

from distillery.config.teacher import TeacherParams
from distillery.modeling import loading
from distillery.teachers.causal import loading as causal_loading
from distillery.teachers.causal import teacher as causal_teacher
from tests.conftest import tiny_config


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str, dict]]:
    """Every ``from_pretrained`` of the encoder path: (what, path, kwargs)."""
    seen: list[tuple[str, str, dict]] = []

    def config(path, **kw):
        seen.append(("config", path, kw))
        return tiny_config()

    def model(path, **kw):
        seen.append(("model", path, kw))
        return BertForSequenceClassification(tiny_config(num_labels=kw.get("num_labels", 2)))

    def tokenizer(path, **kw):
        seen.append(("tokenizer", path, kw))
        return object()

    monkeypatch.setattr(loading.AutoConfig, "from_pretrained", config)
    monkeypatch.setattr(loading.AutoModelForSequenceClassification, "from_pretrained", model)
    monkeypatch.setattr(loading.AutoTokenizer, "from_pretrained", tokenizer)
    return seen


def test_a_hub_teacher_revision_reaches_every_from_pretrained(calls):
    loading.check_teacher("org/encoder", "a1b2c3")
    loading.load_classifier("org/encoder", ["neg", "pos"], revision="a1b2c3")
    loading.load_tokenizer("org/encoder", "a1b2c3")
    assert [(what, path) for what, path, _ in calls] == [
        ("config", "org/encoder"), ("config", "org/encoder"), ("model", "org/encoder"),
        ("tokenizer", "org/encoder")]
    assert all(kw.get("revision") == "a1b2c3" for _, _, kw in calls)
    assert calls[2][2]["num_labels"] == 2  # the labels still reach the model


def test_no_revision_by_default_and_a_local_folder_ignores_it_once(calls, tmp_path, caplog):
    loading.load_tokenizer("org/encoder")
    folder = str(tmp_path)
    with caplog.at_level("WARNING", logger="distillery.modeling.loading"):
        loading.check_teacher(folder, "v1")
        loading.load_classifier(folder, ["neg", "pos"], revision="v1")
    assert all("revision" not in kw for _, _, kw in calls)
    warned = [r.getMessage() for r in caplog.records if "revision" in r.getMessage()]
    assert len(warned) == 1 and "teacher.revision='v1' ignored" in warned[0]


@pytest.mark.parametrize(
    ("spec", "path", "gguf"),
    [("org/causal", "org/causal", None),
     ("org/causal/model.Q4.gguf", "org/causal", "model.Q4.gguf")],
    ids=["hub-id", "hub-gguf"],
)
def test_a_causal_hub_teacher_pins_config_tokenizer_and_model(spec, path, gguf):
    source = causal_loading.resolve_source(spec, revision="r9")
    assert (source.path, source.gguf_file) == (path, gguf)
    assert source.kwargs()["revision"] == "r9"
    assert "revision" not in causal_loading.resolve_source(spec).kwargs()


def test_the_causal_teacher_check_reads_the_pinned_config(monkeypatch):
    seen = []

    def config(path, **kw):
        seen.append((path, kw.get("revision")))
        return LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, vocab_size=99, architectures=["LlamaForCausalLM"])

    monkeypatch.setattr(causal_loading.AutoConfig, "from_pretrained", config)
    tp = TeacherParams(model="org/causal", revision="r9")
    assert causal_teacher.check(tp) == "causal"
    assert seen == [("org/causal", "r9")]


def test_the_revision_is_part_of_the_teachers_experiment():
    assert "revision" not in TeacherParams().experiment()  # existing study names unchanged
    assert TeacherParams(model="org/x", revision="v2").experiment()["revision"] == "v2"
    assert TeacherParams(revision=" ").check() == [
        "revision: must not be empty; null = the default branch"]


def test_a_local_gguf_file_takes_no_revision(tmp_path: Path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert "revision" not in causal_loading.resolve_source(str(gguf), revision="r9").kwargs()


def test_a_pinned_hub_student_loads_from_its_snapshot(monkeypatch, tmp_path):
    """``distill.student_revision``: the Hub student is fetched at that revision (safetensors,
    configs and tokenizer files only) and every later load reads the snapshot folder."""
    import huggingface_hub

    seen = []

    def snapshot(repo, revision=None, allow_patterns=None):
        seen.append((repo, revision, allow_patterns))
        return str(tmp_path / "snapshots" / "abc123")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    out = loading.student_base("pretrained", "org/student", "models/teacher", "v1.2")
    assert out == str(tmp_path / "snapshots" / "abc123")
    assert seen == [("org/student", "v1.2", loading.SNAPSHOT_FILES)]
    assert not any(p.endswith((".bin", ".pt", ".pkl", "*")) for p in loading.SNAPSHOT_FILES)
    assert loading.student_base("random", "org/student", "models/teacher") == "org/student"
    assert len(seen) == 1  # no revision: the id as it is, no download


def test_a_pinned_student_that_cannot_be_fetched_is_one_message(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache\nmore")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(loading.UserError, match=r"'org/student' at "
                       r"distill.student_revision='v9' could not be fetched "
                       r"\(LocalEntryNotFoundError: Cannot find .*\); check the id"):
        loading.student_base("pretrained", "org/student", "models/teacher", "v9")


def test_a_local_student_ignores_its_revision(tmp_path, caplog):
    folder = tmp_path / "student"
    folder.mkdir()
    with caplog.at_level("WARNING"):
        assert loading.student_base("pretrained", str(folder), "t", "v1") == str(folder)
    assert "distill.student_revision='v1' ignored" in caplog.text
    from distillery.config.distill import DistillParams

    assert DistillParams(student_revision="").check() == [
        "student_revision: must not be empty; null = the default branch"]
