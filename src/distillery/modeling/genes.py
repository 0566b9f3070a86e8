"""The genes of a student architecture (the NAS search space) and the repair that keeps a genome
valid. Plain Python: the architecture search proposes genomes without loading torch."""

from __future__ import annotations

from typing import Any

GENES = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
"""Architecture genes of a student (the NAS search space), in config names of BERT."""


def repair_genome(genome: dict[str, int], space: dict[str, Any]) -> dict[str, int]:
    """Make ``genome`` valid: heads must divide hidden size.

    With ``space["head_size"]`` set, the head count is ``hidden_size / head_size``. Otherwise
    keeps ``hidden_size`` and picks the allowed head count closest to the requested one that
    divides it; if none does, picks the closest hidden size that some head count divides.
    """
    g = dict(genome)
    if space.get("head_size"):
        g["num_attention_heads"] = g["hidden_size"] // space["head_size"]
        return g
    heads_ok = [a for a in space["num_attention_heads"] if g["hidden_size"] % a == 0]
    if not heads_ok:
        hiddens = [
            h for h in space["hidden_size"] if any(h % a == 0 for a in space["num_attention_heads"])
        ]
        g["hidden_size"] = min(hiddens, key=lambda h: (abs(h - g["hidden_size"]), h))
        heads_ok = [a for a in space["num_attention_heads"] if g["hidden_size"] % a == 0]
    if g["num_attention_heads"] not in heads_ok:
        g["num_attention_heads"] = min(
            heads_ok, key=lambda a: (abs(a - g["num_attention_heads"]), a)
        )
    return g
