"""Tests of ``distillery.distill.teacher_logits``: the teacher's logits computed once (stage
``label``) read back unchanged, and refused when they are not of the split a stage has."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import BertTokenizerFast

from distillery.core.io import UserError
from distillery.data.prepared import Split
from distillery.distill import teacher_logits
from distillery.measure import evaluate
from tests.conftest import make_pairs, make_sentences

NAMES = ["negative", "positive"]


@pytest.fixture
def splits() -> dict[str, Split]:
    return {"train": make_sentences(11, seed=1), "transfer": make_sentences(5, seed=2),
            "val": make_sentences(4, seed=3), "eval": make_sentences(6, seed=4)}


@pytest.fixture
def saved(tmp_path, splits, tiny_model, tiny_teacher_dir):
    tok = BertTokenizerFast.from_pretrained(tiny_teacher_dir)
    logits = teacher_logits.compute(tiny_model, tok, splits, max_length=16, batch_size=4)
    teacher_logits.save(tmp_path / "logits", logits, splits, NAMES, 16, "sha-of-teacher")
    return tmp_path / "logits", logits, tok


def test_logits_are_the_teachers_and_read_back(saved, splits, tiny_model):
    folder, logits, tok = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "eval.npy", "logits.json", "train.npy", "transfer.npy", "val.npy"]
    for name, split in splits.items():
        got = teacher_logits.load(folder, name, split)
        assert got.dtype == np.float32 and got.shape == (len(split), 2)
        np.testing.assert_array_equal(got, logits[name])
        np.testing.assert_allclose(got, evaluate.predict_logits(tiny_model, split, tok, 16),
                                   atol=1e-6)


def test_load_many_concatenates_in_the_order_asked(saved, splits):
    folder, logits, _ = saved
    both = teacher_logits.load_many(folder, splits, "train", "transfer")
    np.testing.assert_array_equal(both, np.concatenate([logits["train"], logits["transfer"]]))


def test_logits_of_other_texts_are_refused(saved, splits):
    folder, _, _ = saved
    edited = Split(splits["train"].texts[:-1] + ["a new sentence"], splits["train"].labels)
    with pytest.raises(UserError, match="'train' are of 11 other texts.*rerun stage `label`"):
        teacher_logits.load(folder, "train", edited)
    shorter = splits["eval"].subset(range(5))
    with pytest.raises(UserError, match="of 6 other texts than the 5 given"):
        teacher_logits.load(folder, "eval", shorter)
    pairs = make_pairs(4, seed=3)  # same length as val, other texts
    with pytest.raises(UserError, match="'val'"):
        teacher_logits.load(folder, "val", pairs)


def test_missing_folder_or_split_names_the_stage(saved, splits, tmp_path):
    folder, _, _ = saved
    with pytest.raises(UserError, match="no teacher logits.*dvc repro label"):
        teacher_logits.load(tmp_path / "nowhere", "train", splits["train"])
    with pytest.raises(UserError, match="no logits of split 'test'"):
        teacher_logits.load(folder, "test", splits["train"])


def test_a_corrupt_array_is_refused(saved, splits):
    folder, logits, _ = saved
    np.save(folder / "val.npy", logits["val"].astype(np.float64), allow_pickle=False)
    with pytest.raises(UserError, match="float64.*expected float32"):
        teacher_logits.load(folder, "val", splits["val"])


def test_save_refuses_logits_of_the_wrong_shape(tmp_path, splits):
    bad = {"train": np.zeros((10, 2), np.float32)}
    with pytest.raises(ValueError, match=r"logits of train: shape \(10, 2\), expected \(11, 2\)"):
        teacher_logits.save(tmp_path / "l", bad, splits, NAMES, 16, "t")
    assert not (tmp_path / "l").exists()
