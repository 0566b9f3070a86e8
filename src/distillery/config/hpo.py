"""The ``hpo:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from distillery.config.base import positive, storage_problem


@dataclass
class HpoParams:
    """Search of the teacher's fine-tuning recipe: method, learning rates, LoRA shape."""

    sampler: Literal["gp", "soo", "bamsoo", "tpe", "random"] = "gp"
    """``gp``: GP-BO (log-EI) after a Latin hypercube; ``soo`` / ``bamsoo``: partition-based
    optimistic optimisation (Munos 2011; Wang et al. 2014); ``tpe``; ``random`` (baseline)."""
    n_trials: int = 6
    """Trials the study must hold (finished or pruned); raising it extends a finished study."""
    n_initial: int = 4
    """Initial design before the model takes over: Latin hypercube (gp), random (tpe)."""
    workers: int = 1
    """Processes running trials in parallel on this machine (each gets cores / workers)."""
    storage: str | None = None
    """Optuna storage of the trials: null = the stage's journal file; or the database that
    workers on other machines join, as ``env:NAME`` (the URL, e.g.
    ``postgresql://user:pw@host/db``, read from environment variable ``NAME`` at run time, so
    no password reaches params or ``dvc.lock``) or a URL without a password."""
    method: list[Literal["full", "lora"]] = field(default_factory=lambda: ["full", "lora"])
    """Fine-tuning methods searched: ``full`` (every weight at ``full_lr``) and / or ``lora``
    (adapters at ``lr``); with both, the method is a searched dimension. Causal-LM teachers:
    ``[lora]``."""
    pruner: Literal["median", "halving", "hyperband", "none"] = "median"
    """Stops hopeless trials from the validation scores they report while training (Optuna's
    pruners); samplers ``soo`` / ``bamsoo`` cannot prune and run every trial in full."""
    trial_examples: int | Literal["all"] = 2000
    """Training examples per trial (cheaper fidelity; ``all`` = the final one); the winner
    retrains on all of train."""
    min_epochs: float = 2.0
    """Training length, at least this many passes over the training examples ..."""
    steps_per_class: int = 16
    """... and at least this many optimiser steps per class, so a many-class task trains
    longer (64 classes: 1,024 steps). Trials train the same number of passes on their subset."""
    evals: int = 6
    """Validation scores per training run, evenly spaced: what the pruner sees, what early
    stopping and the best checkpoint are chosen from."""
    patience: int = 2
    """Evaluations without a better validation score before a run stops early; 0 = never."""
    batch_size: int = 32
    """Examples per optimiser step of every trial and of the final retrain."""
    lr: list[float] = field(default_factory=lambda: [1e-4, 3e-3])
    """LoRA: learning-rate range of the adapters (log scale)."""
    full_lr: list[float] = field(default_factory=lambda: [2e-5, 3e-4])
    """Full fine-tuning: learning-rate range of the encoder's weights (log scale)."""
    head_lr: list[float] | None = field(default_factory=lambda: [3e-4, 3e-3])
    """Learning-rate range of the fresh classification head, either method (log scale;
    encoder teachers); null = the head trains at the encoder's learning rate."""
    rank: list[int] = field(default_factory=lambda: [2, 64])
    """LoRA rank range (integers, log scale)."""
    alpha: list[int] = field(default_factory=lambda: [2, 128])
    """LoRA alpha range (integers, log scale); the update is scaled by alpha / rank."""
    dropout: list[float] = field(default_factory=lambda: [0.0, 0.3])
    """LoRA dropout range (linear)."""
    weight_decay: list[float] = field(default_factory=lambda: [1e-5, 1e-1])
    """AdamW weight-decay range (log scale)."""
    target_modules: list[str] | None = None
    """Linear layers that get LoRA adapters (module names or name suffixes, e.g. ``[query,
    value]``); null = every linear of the teacher's transformer layers (attention and
    feed-forward). The family's classification head is trained in full."""
    seed: int = 0
    """Seed of the sampler, the initial design and every training run."""

    def check(self) -> list[str]:
        out = positive(self, "n_trials", "min_epochs", "steps_per_class", "evals")
        out += positive(self, "batch_size", "workers")
        if self.trial_examples != "all" and self.trial_examples <= 0:
            out.append(f"trial_examples: got {self.trial_examples}, expected > 0 or 'all'")
        if self.patience < 0:
            out.append(f"patience: got {self.patience}, expected >= 0 (0 = never stop early)")
        if not self.method or len(set(self.method)) != len(self.method):
            out.append(f"method: got {self.method!r}, expected [full], [lora] or [full, lora]")
        if not 0 <= self.n_initial <= self.n_trials:
            out.append(f"n_initial: got {self.n_initial}, expected 0 <= n_initial <= n_trials")
        for name in ("lr", "full_lr", "head_lr", "rank", "alpha", "dropout", "weight_decay"):
            lo_hi = getattr(self, name)
            if lo_hi is None and name == "head_lr":
                continue
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1] or lo_hi[0] < 0:
                out.append(f"{name}: got {lo_hi!r}, expected [low, high] with 0 <= low <= high")
        for name in ("lr", "full_lr", "head_lr", "weight_decay", "alpha"):
            lo_hi = getattr(self, name)
            if lo_hi is not None and len(lo_hi) == 2 and lo_hi[0] <= 0 <= lo_hi[1]:
                out.append(f"{name}: got {lo_hi!r}, the low end must be > 0 (log scale)")
        if len(self.dropout) == 2 and self.dropout[1] >= 1:
            out.append(f"dropout: got {self.dropout!r}, a dropout probability must be < 1")
        if len(self.rank) == 2 and self.rank[0] < 1:
            out.append(f"rank: got {self.rank!r}, ranks start at 1")
        if problem := storage_problem("storage", self.storage):
            out.append(problem)
        return out
