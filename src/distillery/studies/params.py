"""Typed sections of ``studies/params.yaml``, loaded with ``config.base.load_section``."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    search_space: dict[str, list[int]] | None = None
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
