"""The one registry behind every set of named variants (as lm-eval's ``api/registry.py``):
samplers, pruners, NAS strategies, pruning methods, quantisation recipes, encoder families,
causal-LM architectures.

A :class:`Registry` is a ``dict`` from name to variant with a kind (``"sampler"``), a
``register`` decorator, and :meth:`Registry.lookup`, whose one error names the kind, the name
asked for and every name available. The params sections accept exactly the registered names
(``tests/unit/test_registry.py`` checks each against its ``Literal``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from distillery.core.io import UserError

T = TypeVar("T")


class Registry(dict[str, T]):
    """Named variants of one kind.

    Args:
        kind: what the variants are, for messages (``"NAS strategy"``).
        items: variants to start with.
    """

    def __init__(self, kind: str, items: dict[str, T] | None = None) -> None:
        super().__init__(items or {})
        self.kind = kind

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``names``."""
        def add(obj: T) -> T:
            for name in names:
                if name in self:
                    raise ValueError(f"{self.kind} {name!r} is registered twice")
                self[name] = obj
            return obj
        return add

    def lookup(self, name: str) -> T:
        """The variant registered as ``name``.

        Raises:
            UserError: ``unknown <kind> <name>; available: <names>``.
        """
        if name not in self:
            raise UserError(f"unknown {self.kind} {name!r}; available: {', '.join(self)}")
        return self[name]
