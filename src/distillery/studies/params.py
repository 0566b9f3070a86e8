"""Typed sections of ``studies/params.yaml``, loaded with ``config.base.load_section``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distillery.config.base import parse_section, positive
from distillery.config.nas import SearchSpace


@dataclass
class HpoStudyParams:
    """HPO samplers compared on a table of LoRA configurations scored once."""

    n_configs: int = 32
    """Configurations scored at the pipeline's trial fidelity (a Latin hypercube of hpo's space)."""
    samplers: list[str] = field(default_factory=lambda: ["gp", "soo", "bamsoo", "tpe", "random"])
    seeds: int = 10
    """Repetitions of every sampler; each draws its own subset of the table."""
    budget: int = 32
    """Trials per run."""
    n_initial: int = 4
    subset: float = 0.8
    """Share of the table each repetition searches (deterministic samplers such as SOO
    otherwise repeat one run R times)."""
    live_checks: int = 3
    """Table configurations retrained with another seed to measure how far a table score is
    from a fresh trial's."""
    seed: int = 0

    def check(self) -> list[str]:
        out = positive(self, "n_configs", "seeds", "budget", "subset")
        if self.subset > 1:
            out.append(f"subset: got {self.subset}, expected a share in (0, 1]")
        from distillery.search import SAMPLERS

        out += [f"samplers: {s!r} is not one of {', '.join(SAMPLERS)}"
                for s in self.samplers if s not in SAMPLERS]
        return out


@dataclass
class ProxyStudyParams:
    """Proxies of the NAS stage ranked against a reference training of the same students."""

    n_archs: int = 10
    budgets: list[int] = field(default_factory=lambda: [25, 50, 100, 200])
    """Proxy training steps."""
    proxies: list[str] = field(default_factory=lambda: ["ce", "kd"])
    reference_steps: int = 600
    """Steps of the reference: distillation from the fine-tuned teacher on train + transfer,
    as the final student is trained."""
    search_space: dict[str, Any] | None = None
    """Where the random architectures come from, keyed as ``nas.search_space``; null = the
    pipeline's ``nas.search_space``. A ranking study needs more distinct students than the
    default NAS space's four."""
    seed: int = 0

    def space(self, default: SearchSpace) -> SearchSpace:
        """:attr:`search_space` as a :class:`~distillery.config.nas.SearchSpace`, or ``default``."""
        if self.search_space is None:
            return default
        return parse_section(SearchSpace, self.search_space, "proxy_study.search_space")

    def check(self) -> list[str]:
        out = positive(self, "n_archs", "reference_steps")
        if self.search_space is not None:
            try:
                self.space(SearchSpace())
            except ValueError as e:
                out += [line.strip()[2:].removeprefix("proxy_study.")
                        for line in str(e).splitlines()[1:]]
        if self.n_archs < 3:
            out.append(f"n_archs: got {self.n_archs}, rank correlations need 3 or more")
        out += [f"budgets: {b} must be > 0" for b in self.budgets if b <= 0]
        out += [f"proxies: {p!r} is not ce or kd" for p in self.proxies if p not in ("ce", "kd")]
        return out


@dataclass
class KdStudyParams:
    """What distillation buys: the student trained without KD, with logits KD and with
    logits + layer-wise KD, over several seeds (:mod:`distillery.studies.ablation`)."""

    variants: list[str] = field(default_factory=lambda: ["no_kd", "logits", "layer_wise"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: float = 2.0
    """Passes over train + transfer per run (the pipeline's ``distill.epochs`` is 4: halved to
    fit the study in about 20 minutes here)."""
    resamples: int = 1000
    """Bootstrap resamples of the eval examples for the contrasts' intervals."""

    def check(self) -> list[str]:
        from distillery.studies.ablation import VARIANTS

        out = positive(self, "epochs", "resamples")
        out += [f"variants: {v!r} is not one of {', '.join(VARIANTS)}"
                for v in self.variants if v not in VARIANTS]
        if len(self.seeds) < 2:
            out.append(f"seeds: got {self.seeds}, a spread needs 2 or more")
        return out


@dataclass
class NasStudyParams:
    """NAS strategies compared at the pipeline's budget on a table of every architecture of
    ``nas.search_space``, each scored once by the pipeline's proxy and timed as it times them
    (:mod:`distillery.studies.tabular`)."""

    strategies: list[str] = field(
        default_factory=lambda: ["evolution", "regularized", "nsga2", "random"])
    seeds: int = 20
    """Runs of every strategy, each with its own seed, on the whole table."""

    def check(self) -> list[str]:
        from distillery.nas import STRATEGIES

        out = positive(self, "seeds")
        out += [f"strategies: {s!r} is not one of {', '.join(STRATEGIES)}"
                for s in self.strategies if s not in STRATEGIES]
        if self.seeds < 5:
            out.append(f"seeds: got {self.seeds}, a spread over runs needs 5 or more")
        return out


@dataclass
class ParadoxStudyParams:
    """Students of the teacher's family trained from scratch for a short and a long budget
    (:mod:`distillery.studies.paradox`)."""

    num_hidden_layers: list[int] = field(default_factory=lambda: [2, 3, 4, 6])
    hidden_size: list[int] = field(default_factory=lambda: [256, 512, 768])
    head_size: int = 64
    """Heads = hidden_size / head_size (BERT's 64)."""
    ffn_ratio: int = 4
    """FFN width = ffn_ratio x hidden_size (BERT's 4)."""
    steps: list[int] = field(default_factory=lambda: [50, 400])
    """The short and the long budget (optimiser steps)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    batch_size: int = 32
    lr: float = 1.0e-4
    pair: list[str] = field(default_factory=lambda: ["2x256", "3x768"])
    """The study's small and large model (9.6M and 45.7M parameters with MiniLM's vocabulary)."""
    workers: int = 1
    """Runs trained in parallel processes (on a GPU several share it)."""
    resamples: int = 1000

    def check(self) -> list[str]:
        out = positive(self, "head_size", "ffn_ratio", "batch_size", "lr", "workers",
                       "resamples")
        out += [f"hidden_size: {h} is not a multiple of head_size {self.head_size}"
                for h in self.hidden_size if h % self.head_size]
        if len(self.steps) != 2 or not 0 < self.steps[0] < self.steps[1]:
            out.append(f"steps: got {self.steps}, expected [short, long] with 0 < short < long")
        if len(self.num_hidden_layers) * len(self.hidden_size) < 3:
            out.append("num_hidden_layers x hidden_size: rank correlations need 3 or more "
                       "architectures")
        if len(self.seeds) < 2:
            out.append(f"seeds: got {self.seeds}, a spread needs 2 or more")
        if len(self.pair) != 2:
            out.append(f"pair: got {self.pair}, expected [small, large] architecture names")
        return out


@dataclass
class KdGridParams:
    """The pipeline's distillation over an alpha x temperature grid, several seeds per cell
    (:mod:`distillery.studies.ablation`)."""

    alpha: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    """Weights of the hard labels (1 - alpha on the teacher's softened logits)."""
    temperature: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    variant: str = "layer_wise"
    """The KD recipe every cell trains (a variant of ``kd_study``)."""
    epochs: float = 1.0
    """Passes over train + transfer per run."""
    resamples: int = 1000

    def check(self) -> list[str]:
        from distillery.studies.ablation import VARIANTS

        out = positive(self, "epochs", "resamples")
        out += [f"alpha: {a} is not in [0, 1]" for a in self.alpha if not 0 <= a <= 1]
        out += [f"temperature: {t} must be > 0" for t in self.temperature if t <= 0]
        if self.variant not in VARIANTS or self.variant == "no_kd":
            out.append(f"variant: {self.variant!r} is not a KD variant of "
                       f"{', '.join(v for v in VARIANTS if v != 'no_kd')}")
        if len(self.seeds) < 2:
            out.append(f"seeds: got {self.seeds}, a spread needs 2 or more")
        return out
