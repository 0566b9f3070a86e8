"""Black-box search on one interface: samplers behind a registry, trials on Optuna storage.

``SAMPLERS[name](space, seed, n_initial)`` returns an Optuna sampler and the initial design
to enqueue; :mod:`~distillery.search.runner` runs any of them through ask/tell on a journal
file or a database, so storage, resume, parallel workers and plots are the same for all.

==========  ==============================================================================
``gp``      GP-BO, log expected improvement (Optuna ``GPSampler``) after a Latin hypercube
``soo``     Simultaneous Optimistic Optimization (Munos 2011), written here
``bamsoo``  Bayesian Multi-Scale Optimistic Optimization (Wang et al. 2014), written here
``tpe``     Tree-structured Parzen estimator (Optuna)
``random``  Random search (Optuna): the baseline
==========  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from distillery.core.registry import Registry
from distillery.search import bamsoo, gp, random_sampler, soo, tpe
from distillery.search.space import Dim, Params, Space

Factory = Callable[[Space, int, int], tuple[optuna.samplers.BaseSampler, list[Params]]]

SAMPLERS: Registry[Factory] = Registry("sampler", {
    "gp": gp.make,
    "soo": soo.make,
    "bamsoo": bamsoo.make,
    "tpe": tpe.make,
    "random": random_sampler.make,
})


def make_sampler(name: str, space: Space, seed: int, n_initial: int = 0):
    """The sampler registered as ``name`` and its initial design."""
    return SAMPLERS.lookup(name)(space, seed, n_initial)


__all__ = ["SAMPLERS", "Dim", "Params", "Space", "make_sampler"]
