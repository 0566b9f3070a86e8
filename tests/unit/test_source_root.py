"""``data.source``: a relative path is taken from the repository root (``$DVC_ROOT``), so that
``dvc exp run --temp`` / ``--queue``, which run in a copy of the repository, find it."""

from __future__ import annotations

import pytest

from distillery.config.data import DataParams
from distillery.core.io import UserError


def test_relative_source_from_dvc_root(tmp_path, monkeypatch):
    (tmp_path / "shared" / "sst2").mkdir(parents=True)
    root, copy = tmp_path / "repo", tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "run1"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.setenv("DVC_ROOT", str(root))
    assert DataParams(source="../shared/sst2").local_source() == root / "../shared/sst2"
    absolute = tmp_path / "shared" / "sst2"
    assert DataParams(source=str(absolute)).local_source() == absolute
    monkeypatch.delenv("DVC_ROOT")  # outside DVC: the working directory
    monkeypatch.chdir(root)
    assert DataParams(source="../shared/sst2").local_source().resolve() == absolute


@pytest.mark.parametrize("source", ["../missing/sst2", "/nowhere/x", "data/train.csv",
                                    "a/b/c", "train.tsv"])
def test_missing_path_names_the_key_and_the_resolved_path(tmp_path, monkeypatch, source):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    with pytest.raises(UserError, match=r"^data\.source: got .* does not exist") as err:
        DataParams(source=source).local_source()
    expected = (tmp_path / source).resolve()
    assert str(expected) in str(err.value)


def test_hub_ids_are_not_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    for source in ("glue", "SetFit/sst2"):
        assert DataParams(source=source).local_source() is None
