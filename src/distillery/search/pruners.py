"""Pruners: which trials stop early, from the validation scores they report while training.

``PRUNERS[name](n_steps)`` returns an Optuna pruner for trials that report at most
``n_steps`` intermediate values (steps ``1..n_steps``). Samplers whose model needs every
trial's final value (SOO, BaMSOO: a pruned cell would have no value) cannot prune:
:func:`make_pruner` logs that and returns Optuna's ``NopPruner``.

==============  ============================================================================
``median``      stop a trial whose best score so far is below the median of finished trials
                at the same step (after 2 finished trials, from its 2nd report on)
``halving``     asynchronous successive halving: rungs at steps 1, 3, 9, ...; a third go on
``hyperband``   Hyperband: successive halving over several brackets of minimum budget
``none``        every trial runs its full budget
==============  ============================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import optuna

from distillery.core.registry import Registry

logger = logging.getLogger(__name__)

PRUNERS: Registry[Callable[[int], optuna.pruners.BasePruner]] = Registry("pruner", {
    "median": lambda n: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2),
    "halving": lambda n: optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                                reduction_factor=3),
    "hyperband": lambda n: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=n,
                                                          reduction_factor=3),
    "none": lambda n: optuna.pruners.NopPruner(),
})

CANNOT_PRUNE = ("soo", "bamsoo")
"""Samplers that need the final value of every trial they proposed."""


def make_pruner(name: str, sampler: str, n_steps: int) -> optuna.pruners.BasePruner:
    """The pruner registered as ``name`` for trials reporting ``n_steps`` values; ``none``
    (with a log line saying so) for a sampler in :data:`CANNOT_PRUNE`."""
    factory = PRUNERS.lookup(name)
    if sampler in CANNOT_PRUNE and name != "none":
        logger.info("sampler %s cannot use pruned trials (each cell needs its final value): "
                    "pruner %s is off, every trial runs its full budget", sampler, name)
        return PRUNERS["none"](n_steps)
    return factory(max(n_steps, 1))
