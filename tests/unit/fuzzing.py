"""Hypothesis settings shared by the fuzz tests (``test_fuzz_*.py``).

Reproducible (``derandomize``: CI runs the same cases every time), no deadline (a loaded
2-core machine), no example database, and hypothesis' own caches kept out of the repository.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "distillery-hypothesis")


def fuzz(n: int) -> settings:
    """Settings of a property run over ``n`` generated cases."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example,
                                           HealthCheck.function_scoped_fixture])
