"""The ``nas:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from distillery.config.base import in_range, positive, storage_problem


@dataclass
class SearchSpace:
    """Choices for each architecture gene of the student (a BERT encoder).

    The defaults span 120 architectures of 1-6 layers, 128-384 wide (heads of the teacher's
    size, 32: weight selection copies whole teacher heads) and FFN 384-1536; the speed budget
    (``nas.min_speedup``, measured on the int8 ONNX file end to end) decides which are
    allowed, not the space."""

    num_hidden_layers: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6])
    """Transformer layers."""
    hidden_size: list[int] = field(default_factory=lambda: [128, 192, 256, 320, 384])
    """Width of the hidden states."""
    num_attention_heads: list[int] = field(default_factory=lambda: [4, 6, 8, 10, 12])
    """Attention heads per layer (must divide hidden_size); ignored when ``head_size`` is
    set."""
    intermediate_size: list[int] = field(default_factory=lambda: [384, 768, 1152, 1536])
    """Width of the feed-forward layer."""
    head_size: int | None = 32
    """Every genome gets ``hidden_size / head_size`` heads (the teacher's head size keeps
    teacher-initialised heads whole; other sizes recombine its query/key weights: 12 heads
    of 32 distilled to 0.833, 4 heads of 96 to 0.821 on the SmolLM2 profile's 3 x 384
    student); null = ``num_attention_heads`` is a free gene."""

    def check(self) -> list[str]:
        out = []
        for f in dataclasses.fields(self):
            if f.name == "head_size":
                continue
            vals = getattr(self, f.name)
            if not vals or any(v <= 0 for v in vals):
                out.append(f"{f.name}: got {vals!r}, expected a non-empty list of positive ints")
        if self.head_size is not None:
            bad = [h for h in self.hidden_size if self.head_size <= 0 or h % self.head_size]
            if bad:
                out.append(f"head_size: got {self.head_size!r}, which does not divide "
                           f"hidden_size {bad}; use a common divisor or null")
            return out
        if not out and not any(
            h % a == 0 for h in self.hidden_size for a in self.num_attention_heads
        ):
            out.append(
                f"num_attention_heads: got {self.num_attention_heads}, none divides a hidden_size "
                f"of {self.hidden_size}; add a head count that does"
            )
        return out


@dataclass
class NasParams:
    """Evolutionary (or random) architecture search with cheap proxy training."""

    strategy: Literal["evolution", "regularized", "nsga2", "random"] = "evolution"
    """``evolution`` (generational, elitism + mutation), ``regularized`` (aging evolution,
    Real et al. 2019), ``nsga2`` (score vs ``cost``, Pareto front) or the ``random``
    baseline."""
    population: int = 8
    """Candidates per generation."""
    generations: int = 4
    """Trials = population x generations (for every strategy); raising it extends a study."""
    elite: int = 2
    """Best candidates copied unchanged into the next generation (evolution)."""
    sample_size: int = 3
    """Members drawn for each parent tournament (regularized)."""
    workers: int = 1
    """Processes running proxy trials in parallel (each gets cores / workers threads)."""
    storage: str | None = None
    """Optuna storage of the trials: null = the stage's journal file; or a database as
    ``env:NAME`` (its URL read from environment variable ``NAME`` at run time) or a URL without
    a password (as ``hpo.storage``)."""
    mutation_rate: float = 0.5
    """Probability that each gene of a child is resampled."""
    proxy: Literal["ce", "kd"] = "kd"
    """How a candidate trains: ``ce`` (hard labels) or ``kd`` (distillation from the fine-tuned
    teacher with ``distill.alpha`` / ``distill.temperature``, as the final student)."""
    proxy_steps: int = 50
    """Training steps per candidate. Too few can invert the ranking (deep nets look worse);
    ``studies/`` measures each budget's Kendall tau against full distillation (kd@50: 0.80)."""
    cost: Literal["params", "latency"] = "params"
    """NSGA-II's second objective: parameters or measured batch-1 latency (both minimised)."""
    max_params: float | None = None
    """Selection limit in millions of parameters (every strategy); null = none."""
    max_latency_ms: float | None = None
    """Selection limit on the candidate's end-to-end latency (ms; int8 ONNX, as
    ``min_speedup`` measures it); null = none."""
    min_speedup: float | None = 4.0
    """Speed budget: a candidate exported as the pipeline ships it (``export.int8_recipe``,
    ``tokenizers`` + ONNX Runtime, batch 1, end to end) must be at least this many times
    faster than the int8 file of the model candidates are built from, timed side by side
    (:mod:`distillery.nas.latency`): the teacher, or ``distill.student_model`` when
    ``distill.student_init`` is not ``teacher`` (a causal-LM teacher has no int8 file).
    Candidates below it rank under every candidate within it (fitness = score -
    min_speedup / speedup) and cannot win. Compression adds to it: pruning and the
    vocabulary-pruned file took the default run's 2 x 384 student from 3.5x here to 5.5x
    in stage benchmark, so 4 aims at the report's 6x. Null = no budget (and no timing)."""
    batch_size: int = 32
    """Examples per proxy training step."""
    lr: float = 1e-4
    """Learning rate of the proxy training."""
    init_from_teacher: bool = True
    """Copy teacher weights into every tensor whose shape allows (embeddings, first layers)."""
    params_penalty: float = 0.0
    """Fitness -= params_penalty * encoder (non-embedding) parameters in millions: a
    deterministic stand-in for latency, which grows with the encoder, not the vocabulary.
    0 by default: the search space bounds the depth; 0.01 made the default search trade
    2 layers (proxy 0.794) for 1 (0.776); 1-layer students distilled to 0.78-0.80 where
    2 layers reach 0.83."""
    latency_penalty: float = 0.0
    """Fitness -= latency_penalty * end-to-end latency in ms (measured, so not
    deterministic)."""
    latency_repeats: int = 100
    """Batch-1 calls timed per candidate and per reference over 5 interleaved rounds."""
    search_space: SearchSpace = field(default_factory=SearchSpace)
    """Choices for each architecture gene (see below)."""
    seed: int = 0
    """Seed of the sampler and of every proxy training."""

    def check(self) -> list[str]:
        out = positive(self, "population", "generations", "proxy_steps", "batch_size", "lr")
        out += positive(self, "latency_repeats", "sample_size", "workers")
        out += in_range("mutation_rate", self.mutation_rate, 0.0, 1.0)
        if not 0 <= self.elite < self.population:
            out.append(f"elite: got {self.elite}, expected 0 <= elite < population")
        for name in ("params_penalty", "latency_penalty"):
            if getattr(self, name) < 0:
                out.append(f"{name}: got {getattr(self, name)}, expected >= 0 (0 = off)")
        for name in ("max_params", "max_latency_ms", "min_speedup"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                out.append(f"{name}: got {getattr(self, name)!r}, expected > 0 or null")
        if self.strategy == "nsga2" and self.population < 2:
            out.append(f"population: got {self.population}, nsga2 needs 2 or more")
        if problem := storage_problem("storage", self.storage):
            out.append(problem)
        return out + [f"search_space.{p}" for p in self.search_space.check()]
