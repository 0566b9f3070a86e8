"""Profiles (partial params files in ``profiles/``) become checked ``dvc exp run`` arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillery.config import profile
from distillery.core.io import UserError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "profiles").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_profile_is_valid_params(path):
    args = profile.arguments(path)
    assert args[0::2] == ["-S"] * (len(args) // 2) and args


def test_nested_keys_are_dotted_and_lists_stay_one_value(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("hpo:\n  method: [lora]\n  lr: [1.0e-4, 1.0e-3]\n"
                 "nas:\n  search_space:\n    num_hidden_layers: [3]\n"
                 "data:\n  label_names: null\n")
    assert profile.arguments(f) == [
        "-S", "hpo.method=[lora]", "-S", "hpo.lr=[0.0001, 0.001]",
        "-S", "nas.search_space.num_hidden_layers=[3]", "-S", "data.label_names=null"]


@pytest.mark.parametrize(("text", "match"), [
    ("distil:\n  epochs: 8\n", "unknown section 'distil'"),
    ("distill:\n  epoch: 8\n", "distill.epoch: unknown key"),
    ("distill:\n  alpha: 2\n", r"distill.alpha: got 2.0"),
    ("- 1\n", "expected a mapping"),
])
def test_a_bad_profile_names_what_to_change(tmp_path, text, match):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=match):
        profile.arguments(f)
