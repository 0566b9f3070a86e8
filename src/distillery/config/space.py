"""The ``space:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SpaceParams:
    """The Space folder the ``space`` stage writes."""

    variant: str = "recommended"
    """ONNX variant to ship (e.g. ``student-onnx-int8``); ``recommended`` = the report's pick."""
    title: str = "Distillery student"
    """The Space's title (its README header and the page)."""
    examples: int = 8
    """Eval examples offered on the page: about half the model gets wrong, half right."""

    def check(self) -> list[str]:
        out = []
        if not self.variant.strip():
            out.append(f"variant: got {self.variant!r}, give an ONNX variant name or "
                       "'recommended'")
        elif "-torch-" in self.variant:
            out.append(f"variant: got {self.variant!r}; a Space runs ONNX Runtime, pick an "
                       "'-onnx-' variant")
        if not self.title.strip():
            out.append(f"title: got {self.title!r}, expected a non-empty title")
        if self.examples < 0:
            out.append(f"examples: got {self.examples}, expected >= 0")
        return out
