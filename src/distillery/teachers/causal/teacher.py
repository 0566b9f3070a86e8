"""The ``hpo`` stage for a causal-LM teacher: LoRA search scored by lm-eval, the final
specialisation, generic-vs-specialised measurements and the classifier form that the rest of
the pipeline distils from.

- Every trial LoRA-fine-tunes the base model (loaded once per worker; the adapters are
  removed after the trial, no reload) on ``hpo.trial_examples`` training examples and is
  scored by lm-eval (``simple_evaluate`` on the in-memory model) on the validation split.
- The winner retrains on all of train. Before and after, lm-eval measures the model on the
  eval split (base: zero-shot and ``teacher.num_fewshot``-shot; specialised: zero-shot) and the
  perplexity of a reference text that ships with scikit-learn (what specialisation cost).
- The merged teacher is saved in its classifier form (:mod:`distillery.teachers.causal.classifier`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from distillery.core.device import resolve_device
from distillery.core.io import UserError
from distillery.data.prepared import Split
from distillery.lmeval import evaluation
from distillery.teachers.causal import classifier, finetune
from distillery.teachers.causal.archs import kind_of
from distillery.teachers.causal.loading import load_causal_lm, load_config, option_problems
from distillery.teachers.causal.prompt import Prompt
from distillery.teachers.causal.scoring import class_log_scores
from distillery.teachers.hpo import Trials

logger = logging.getLogger(__name__)

SCORE_KEY = {"accuracy": "acc", "macro_f1": "macro_f1"}
"""lm-eval result key of each ``task.metric``."""
PROBE_TEXTS = 500
"""Train texts on which the classifier form's tokenisation is matched to lm-eval's."""


def check(tp: Any, dp: Any = None) -> str:
    """The teacher's kind (``causal`` | ``encoder``), after checking that the params fit it:
    one error naming every offending key, before any compute.

    Args:
        tp: ``TeacherParams``.
        dp: ``DistillParams`` (student init), if the caller uses them.
    """
    config = load_config(tp.model, revision=tp.revision)
    kind = kind_of(config, "teacher.model")
    options = {"teacher.prompt": tp.prompt, "teacher.verbalizers": tp.verbalizers,
               "teacher.num_fewshot": tp.num_fewshot}
    if dp is not None:
        # layer-wise KD (distill.hidden_weight / attention_weight) needs student_init:
        # teacher, which this refuses: stage distill skips it with a warning
        options |= {"distill.student_init": dp.student_init == "teacher"}
    problems = option_problems(kind, options) + length_problems(tp.max_length, config)
    if problems:
        raise UserError("; ".join(problems))
    return kind


POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2}
"""Position ids these families reserve (padding index + 1): fewer usable positions."""


def length_problems(max_length: int, config: Any) -> list[str]:
    """``teacher.max_length`` beyond the positions the model can embed, as a problem line."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return []
    usable = positions - POSITION_OFFSET.get(config.model_type, 0)
    if max_length <= usable:
        return []
    return [f"teacher.max_length: got {max_length}, but this {config.model_type} model embeds at "
            f"most {usable} positions (max_position_embeddings); set it to {usable} or less"]


def build_prompt(tp: Any, names: list[str], pair: bool) -> Prompt:
    """The prompt of ``teacher.prompt`` / ``teacher.verbalizers`` for the task's labels."""
    return Prompt.build(names, tp.prompt, tp.verbalizers, pair)


def lora_config(p: Any, hp: Any, epochs: float, tp: Any):
    from distillery.modeling.training import TrainConfig

    return TrainConfig(lr=hp.lr, batch_size=p.batch_size, max_length=tp.max_length,
                       epochs=epochs, weight_decay=hp.weight_decay, seed=p.seed)


def lm_eval_score(model, tok, task: Path, metric: str, num_fewshot: int = 0) -> float:
    """lm-eval's ``task.metric`` of the in-memory ``model`` on ``task``."""
    return evaluation.lm_eval_accuracy(model, tok, task, num_fewshot)[SCORE_KEY[metric]]


class CausalTrials(Trials):
    """One HPO worker for a causal-LM teacher: the base model is loaded once per worker and
    each trial's adapters are removed after it; trials are scored by lm-eval on val once
    trained (no intermediate scores: the pruner never stops them)."""

    causal = True

    def objective(self, splits: dict[str, Split], names: list[str], trial_train: Split,
                  stack: ExitStack) -> Callable[[dict[str, Any]], float]:
        from distillery.teachers import hpo

        p, tp = self.hpo, self.teacher
        lm, tok = load_causal_lm(tp.model, resolve_device(tp.device), revision=tp.revision)
        prompt = build_prompt(tp, names, trial_train.pairs is not None)
        classifier.verbalizer_ids(tok, prompt)
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="distillery-lmeval-"))
        tasks = evaluation.write_tasks(folder, prompt, self.data, split="val")

        epochs = hpo.run_epochs(p, len(splits["train"]), len(names))

        def score(params: dict[str, Any]) -> float:
            hp = hpo.recipe(params, p).lora()
            peft_model = finetune.fine_tune(lm, tok, prompt, trial_train, hp,
                                            lora_config(p, hp, epochs, tp),
                                            p.target_modules, desc=f"lora r={hp.rank}")
            try:
                return lm_eval_score(peft_model, tok, tasks.classify, self.metric)
            finally:
                peft_model.unload()  # the base model again, for the next trial

        return score


class ValScore:
    """The ``val/score`` of a training curve for a causal LM: ``task.metric`` of the class
    log-scores on (the first ``n`` of) the validation split."""

    def __init__(self, tok, prompt: Prompt, val: Split, max_length: int, metric: str,
                 n: int = 100) -> None:
        self.tok, self.prompt, self.max_length, self.metric = tok, prompt, max_length, metric
        self.val = val.subset(range(min(n, len(val))))

    def __call__(self, model) -> float:
        from distillery.measure import evaluate

        logits = class_log_scores(model, self.tok, self.prompt, self.val, self.max_length)
        return evaluate.score(logits, self.val.labels, self.metric)


def specialise(tp: Any, p: Any, best: Any, splits: dict[str, Split], names: list[str],
               data: str | Path, out: str | Path, curve_dir: str | Path,
               metric: str) -> dict[str, Any]:
    """Retrain the winner on all of train, measure base and specialised model with lm-eval,
    save the classifier form to ``out``.

    Returns:
        Flat metrics: :func:`~distillery.lmeval.evaluation.generic_vs_specialised`, lm-eval's
        score of the specialised teacher (``teacher_lm_eval_*``), how faithfully the classifier
        form tokenises (``form_*``), the teacher's size.
    """
    from distillery.measure import curves
    from distillery.modeling import loading

    train = splits["train"]
    pair = train.pairs is not None
    device = resolve_device(tp.device)
    lm, tok = load_causal_lm(tp.model, device, revision=tp.revision)
    prompt = build_prompt(tp, names, pair)
    classifier.verbalizer_ids(tok, prompt)
    shots = (0, tp.num_fewshot) if tp.num_fewshot else (0,)
    with tempfile.TemporaryDirectory(prefix="distillery-lmeval-") as folder:
        tasks = evaluation.write_tasks(folder, prompt, data, split="eval")
        logger.info("base model: lm-eval on eval (%s-shot) and reference-text perplexity",
                    "/".join(map(str, shots)))
        base = evaluation.measure(lm, tok, tasks, shots=shots, max_length=None)
        from distillery.teachers.hpo import run_epochs

        cfg = lora_config(p, best, run_epochs(p, len(train), len(names)), tp)
        total = cfg.total_steps(len(train))
        scorer = ValScore(tok, prompt, splits["val"], tp.max_length, metric)
        with curves.Curve(curve_dir, splits["val"], None, tp.max_length, metric, total,
                          n_evals=4, scorer=scorer) as curve:
            peft_model = finetune.fine_tune(lm, tok, prompt, train, best, cfg, p.target_modules,
                                            desc=f"lora r={best.rank} (all train)",
                                            on_step=curve)
        merged = finetune.merge(peft_model)
        logger.info("specialised model: lm-eval on eval and reference-text perplexity")
        spec = evaluation.measure(merged, tok, tasks, shots=(0,), max_length=None)
    probe = train.subset(range(min(PROBE_TEXTS, len(train))))
    form, form_tok, facts = classifier.to_sequence_classifier(merged.cpu(), tok, prompt,
                                                              probe.texts, probe.pairs)
    classifier.save(form, form_tok, out)
    return {
        **evaluation.generic_vs_specialised(base, spec, tp.num_fewshot),
        "teacher_lm_eval_acc": spec["acc_0shot"],
        "teacher_lm_eval_macro_f1": spec["macro_f1_0shot"],
        "base_zero_shot_macro_f1": base["macro_f1_0shot"],
        "form_prefix_space": int(facts.prefix_space),
        "form_token_match": facts.token_match,
        "teacher_kind": "causal", "teacher_model_type": form.config.model_type,
        "teacher_prompt": prompt.template, "teacher_verbalizers": ",".join(prompt.verbalizers),
        "teacher_n_params_lm": loading.count_params(merged),
        "device": str(device),
    }

