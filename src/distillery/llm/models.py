"""The two causal LMs of a study: the base model (``teacher.model``) and the specialised one,
rebuilt as a causal LM from the ``hpo`` stage's classifier form.

The classifier form (:mod:`distillery.teachers.causal.classifier`) keeps the merged model's
whole body and, as its head, the LM head's rows of the verbalizer tokens. LoRA adapts the
attention and MLP projections only, so the LM head is the base model's: the specialised
causal LM = the base model with the classifier form's body. :func:`load_specialised` checks
that the form's head equals the base LM head's verbalizer rows, which fails loudly if the
form was made from another base model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file

from distillery.core.io import UserError
from distillery.modeling.loading import PROMPT_ATTR
from distillery.teachers.causal.classifier import HEAD, verbalizer_ids
from distillery.teachers.causal.loading import load_causal_lm
from distillery.teachers.causal.prompt import Prompt

logger = logging.getLogger(__name__)


def load_base(spec: str, revision: str | None = None):
    """``(model, tokenizer)`` of ``teacher.model``, fp32 on the CPU."""
    return load_causal_lm(spec, "cpu", revision=revision)


def form_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a saved classifier form (one or several safetensors shards)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise UserError(f"{folder} holds no safetensors weights: run `dvc repro hpo`")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state |= load_file(str(f))
    return state


def load_specialised(spec: str, folder: str | Path, revision: str | None = None):
    """The specialised causal LM: the base model with the classifier form's body.

    Returns:
        ``(model, tokenizer, prompt)``; the tokenizer is the base model's (the form's own wraps
        every text in the prompt).

    Raises:
        UserError: ``folder`` is not the classifier form of a causal LM, or not of this base.
    """
    import json

    config = json.loads((Path(folder) / "config.json").read_text())
    if PROMPT_ATTR not in config:
        raise UserError(f"{folder} is not the classifier form of a causal-LM teacher (no "
                        f"{PROMPT_ATTR} in its config): the teacher is an encoder")
    prompt = Prompt.from_dict(config[PROMPT_ATTR])
    model, tok = load_base(spec, revision)
    state = form_state(folder)
    prefix = model.base_model_prefix + "."
    body = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing, unexpected = model.base_model.load_state_dict(body, strict=False)
    if missing or unexpected:
        raise UserError(f"{folder} does not fit {spec}: missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]}; was teacher.model changed after `hpo`?")
    ids = verbalizer_ids(tok, prompt)
    rows = model.get_output_embeddings().weight[ids].detach()
    if not torch.allclose(rows, state[f"{HEAD}.weight"].to(rows.dtype), atol=1e-6):
        raise UserError(f"{folder}'s head is not {spec}'s LM head at the verbalizer tokens "
                        "(another base model?): rerun `dvc repro hpo`")
    logger.info("specialised causal LM: %s with the body of %s", spec, folder)
    return model.eval(), tok, prompt
