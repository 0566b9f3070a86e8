"""Encoder families: one module per family behind a small registry (as peft's ``tuners/``).

The pipeline handles any ``*ForSequenceClassification`` model of a registered family the same
way: a student is the teacher's own class with the genome's shape (same vocabulary, tokenizer
and position scheme, because its config is a copy of the teacher's), initialised from evenly
spaced teacher layers with leading slices of wider weights.

=============  ==============================  ===============================
family         model_type                      layers
=============  ==============================  ===============================
bert           bert                            bert.encoder.layer
roberta        roberta, xlm-roberta            roberta.encoder.layer
distilbert     distilbert                      distilbert.transformer.layer
electra        electra                         electra.encoder.layer
deberta_v2     deberta-v2 (DeBERTa v2 / v3)    deberta.encoder.layer
=============  ==============================  ===============================

Pruning, LoRA's default targets and the NAS parameter penalty all act on the ``nn.Linear``
modules of those layers; structured pruning (heads and FFN neurons) needs the family's
:class:`Structure` and is not available for deberta-v2.

To add a family, write a module like :mod:`distillery.modeling.families.bert` and import it below.
"""

from __future__ import annotations

import copy
import logging

import torch
from transformers import AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from distillery.core.io import UserError
from distillery.modeling.families import bert, deberta_v2, distilbert, electra, roberta  # noqa: F401
from distillery.modeling.families.base import REGISTRY, Family, Structure
from distillery.modeling.genes import GENES

logger = logging.getLogger(__name__)

SUPPORTED = tuple(REGISTRY)
"""``model_type`` values the pipeline supports."""

__all__ = ["GENES", "SUPPORTED", "Family", "Structure", "build_student", "encoder_params",
           "genome_of", "get", "init_from_teacher", "layer_map", "layers", "student_config"]


def get(config_or_model: PretrainedConfig | PreTrainedModel | str) -> Family:
    """The family of a config, a model or a ``model_type``.

    Raises:
        ValueError: the model type is not supported (the message lists those that are).
    """
    obj = config_or_model
    model_type = obj if isinstance(obj, str) else getattr(getattr(obj, "config", obj),
                                                          "model_type", None)
    family = REGISTRY.get(model_type)
    if family is None:
        raise UserError(f"model type {model_type!r} is not supported as an encoder; supported: "
                         + ", ".join(SUPPORTED))
    return family


def genome_of(config: PretrainedConfig) -> dict[str, int]:
    """The four genes of ``config`` under their BERT names."""
    family = get(config)
    return {g: int(getattr(config, family.attr(g))) for g in GENES}


def student_config(teacher_config: PretrainedConfig, genome: dict[str, int]) -> PretrainedConfig:
    """A copy of the teacher's config (vocabulary, labels, positions, activation...) with the
    genome's shape.

    Raises:
        ValueError: ``hidden_size`` is not a multiple of ``num_attention_heads``, or the family
            is not supported.
    """
    family = get(teacher_config)
    if genome["hidden_size"] % genome["num_attention_heads"]:
        raise ValueError(f"invalid genome {genome}: hidden_size % num_attention_heads != 0")
    cfg = copy.deepcopy(teacher_config)
    for gene in GENES:
        setattr(cfg, family.attr(gene), int(genome[gene]))
    if family.fix_config is not None:
        family.fix_config(cfg)
    cfg.__dict__.pop("distillery_converted_from", None)  # a student is not a conversion
    cfg.__dict__.pop("distillery_pruned", None)  # nor pruned: every layer has the genome's shape
    return cfg


def layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The transformer layers of ``model`` (a ``ModuleList``)."""
    return model.get_submodule(get(model).layers)


def encoder_params(model: PreTrainedModel) -> int:
    """Parameters of the transformer layers (what the genome changes besides the width of
    embeddings and head)."""
    return sum(p.numel() for p in layers(model).parameters())


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
    """Copy teacher weights into a student of the same family wherever the shapes allow.

    Tensors outside the layers map by name; student layer ``i`` takes teacher layer
    ``layer_map(...)[i]``. Same shape: copied; smaller: leading slice ("weight selection");
    otherwise (or absent in the teacher) left at random init.

    Returns:
        Counts of tensors ``copied``, ``sliced`` and ``random``.

    Raises:
        ValueError: student and teacher are of different families.
    """
    family = get(student)
    if get(teacher) is not family:
        raise ValueError(f"student ({student.config.model_type}) and teacher "
                         f"({teacher.config.model_type}) must be of the same family")
    prefix = family.layers + "."
    mapping = layer_map(len(layers(student)), len(layers(teacher)))
    t_state = teacher.state_dict()
    counts = {"copied": 0, "sliced": 0, "random": 0}
    new_state = {}
    for name, tensor in student.state_dict().items():
        src_name = name
        if name.startswith(prefix):
            idx, tail = name[len(prefix):].split(".", 1)
            src_name = f"{prefix}{mapping[int(idx)]}.{tail}"
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
) -> PreTrainedModel:
    """A student of the teacher's class and the genome's shape, initialised from ``teacher``
    when ``init``."""
    student = AutoModelForSequenceClassification.from_config(
        student_config(teacher.config, genome))
    if init:
        init_from_teacher(student, teacher)
    return student
