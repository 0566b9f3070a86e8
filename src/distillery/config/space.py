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
    max_input_chars: int = 10_000
    """Longest input (characters, both sentences together) the demo and the Space accept;
    longer ones are refused with a message before any tokenisation. The models read at most
    ``max_length`` tokens (512 tokens are about 2,500 characters of English), and without a
    cap a 1 MB paste costs about 0.5 s of tokenising per model while other visitors queue."""

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
        if self.max_input_chars < 1:
            out.append(f"max_input_chars: got {self.max_input_chars}, expected >= 1")
        return out
