"""One registry for every set of named variants, and every name a param accepts is registered
(and every registered name is accepted)."""

from __future__ import annotations

import typing

import pytest

from distillery import nas, search
from distillery.compress import pruning
from distillery.config.compress import CompressParams
from distillery.config.hpo import HpoParams
from distillery.config.nas import NasParams
from distillery.core.io import UserError
from distillery.core.registry import Registry
from distillery.export import quantize
from distillery.modeling import families
from distillery.search.pruners import PRUNERS
from distillery.teachers import hpo
from distillery.teachers.causal import archs


def _accepted(cls, field: str) -> set[str]:
    hint = typing.get_type_hints(cls)[field]
    if typing.get_origin(hint) is list:
        hint = typing.get_args(hint)[0]
    return set(typing.get_args(hint))


@pytest.mark.parametrize(("cls", "field", "names"), [
    (HpoParams, "sampler", set(search.SAMPLERS)),
    (HpoParams, "pruner", set(PRUNERS)),
    (HpoParams, "method", set(hpo.METHODS)),
    (NasParams, "strategy", set(nas.STRATEGIES)),
    (CompressParams, "method", set(pruning.METHODS)),
], ids=["hpo.sampler", "hpo.pruner", "hpo.method", "nas.strategy", "compress.method"])
def test_every_name_a_param_accepts_is_registered(cls, field, names):
    assert _accepted(cls, field) == names


def test_int8_recipes_are_registered_recipes():
    assert set(quantize.INT8_RECIPES) < set(quantize.RECIPES)


@pytest.mark.parametrize("registry", [search.SAMPLERS, PRUNERS, nas.STRATEGIES,
                                      pruning.METHODS, quantize.RECIPES, families.REGISTRY,
                                      archs.CAUSAL])
def test_every_registry_is_the_one_registry_with_one_error(registry):
    assert isinstance(registry, Registry)
    with pytest.raises(UserError, match=rf"unknown {registry.kind} 'nope'; available: "
                                        + ", ".join(registry)):
        registry.lookup("nope")


def test_register_decorator_and_duplicates():
    r: Registry[int] = Registry("thing")
    r.register("a", "b")(1)
    assert r.lookup("b") == 1 and list(r) == ["a", "b"]
    with pytest.raises(ValueError, match="registered twice"):
        r.register("a")(2)
