"""Pruning variants, one module each, behind a small registry (as peft's ``tuners/``).

==============  =========================================================================
method          what is removed
==============  =========================================================================
unstructured    the globally smallest encoder Linear weights, zeroed under a mask
                (:mod:`.unstructured`; smaller once compressed, no faster)
structured      whole attention heads and FFN neurons, sliced out of the weights by
                Taylor importance (:mod:`.structured`; a smaller, faster dense model)
==============  =========================================================================

:data:`METHODS` maps ``compress.method`` to a :class:`Method`: how the ``compress`` stage
checks, prunes and finishes a model. A new variant is one module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel

from distillery.compress.pruning import structured, unstructured
from distillery.compress.pruning.structured import Scores, importance, prune, reshape
from distillery.compress.pruning.unstructured import (
    apply_global_magnitude,
    make_permanent,
    prunable,
    sparsity,
)
from distillery.core.registry import Registry
from distillery.data.prepared import Split

if TYPE_CHECKING:  # annotations only: the params section is not a dependency of every model
    from distillery.config.compress import CompressParams

__all__ = ["METHODS", "Method", "Scores", "apply_global_magnitude", "importance",
           "make_permanent", "prunable", "prune", "reshape", "sparsity", "structured",
           "unstructured"]


@dataclass(frozen=True)
class Method:
    """One pruning variant as the ``compress`` stage drives it."""

    check: Callable[[PreTrainedModel], None]
    """Raises ``ValueError`` before any compute when the model cannot be pruned this way."""
    apply: Callable[[PreTrainedModel, CompressParams, Split, Any, int], dict[str, Any]]
    """``(model, params, labelled train split, tokenizer, max_length) -> metrics``: prunes
    in place, before the recovery fine-tune."""
    finish: Callable[[PreTrainedModel], dict[str, Any]]
    """After recovery: makes the pruning permanent, returns its final metrics."""


def _check_unstructured(model: PreTrainedModel) -> None:
    if not unstructured.prunable(model):
        raise ValueError("model has no encoder Linear layers to prune")


def _apply_unstructured(model: PreTrainedModel, p: CompressParams, train: Split, tokenizer,
                        max_length: int) -> dict[str, Any]:
    unstructured.apply_global_magnitude(model, p.sparsity)
    return {"target_sparsity": p.sparsity}


def _finish_unstructured(model: PreTrainedModel) -> dict[str, Any]:
    unstructured.make_permanent(model)
    return {"achieved_sparsity": unstructured.sparsity(model)}


def _check_structured(model: PreTrainedModel) -> None:
    structured.structure(model)


def _apply_structured(model: PreTrainedModel, p: CompressParams, train: Split, tokenizer,
                      max_length: int) -> dict[str, Any]:
    scores = structured.importance(model, train, tokenizer, max_length,
                                   batch_size=p.batch_size, n_batches=p.importance_batches,
                                   seed=p.seed)
    spec = structured.prune(model, p.keep_heads, p.keep_neurons, scores)
    return {"keep_heads": p.keep_heads, "keep_neurons": p.keep_neurons,
            "heads_kept": spec["heads"], "neurons_kept": spec["intermediate"]}


METHODS: Registry[Method] = Registry("pruning method", {
    "unstructured": Method(_check_unstructured, _apply_unstructured, _finish_unstructured),
    "structured": Method(_check_structured, _apply_structured, lambda model: {}),
})
"""``compress.method`` -> :class:`Method`."""
