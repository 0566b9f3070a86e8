"""The classifier form of a causal-LM classifier: what the rest of the pipeline runs.

A causal LM with a prompt and one-token verbalizers becomes a plain
``*ForSequenceClassification`` model (Llama, Qwen2, GPT-2 ... all have one) and a tokenizer:

- **Model.** Its body is the causal LM's body; its head (``score``, no bias) holds the LM
  head's rows of the verbalizer tokens. At the last non-pad position its class logits are
  ``W[v] . h``, and the class log-likelihoods lm-eval computes are ``W[v] . h - logsumexp(W h)``:
  the two differ by one number per example, so softmax (at any temperature) and argmax are
  the same. Distillation, accuracy and macro-F1 therefore do not change.
- **Tokenizer.** Its post-processor (``tokenizers.processors.TemplateProcessing``) wraps every
  text in the prompt's fixed tokens, so ``data.encode``, ONNX feeds, the demo and the
  tokenizers-only Space app all build the prompt without knowing there is one. Truncation
  counts the prompt's tokens and cuts the text, never the prompt (lm-eval cuts the start of
  the context instead: a text longer than ``max_length`` can score differently there).

The prompt's pieces are tokenised on their own, while lm-eval tokenises the filled template
whole; byte-level BPE merges nothing across a space, so the two agree when the space before
the text moves into the text (``add_prefix_space``). :func:`to_sequence_classifier` picks the
choice that reproduces lm-eval's context tokens on the given texts and reports how many
match.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import pre_tokenizers, processors
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from distillery.core.io import UserError, atomic_path
from distillery.modeling.loading import PROMPT_ATTR, is_prompted
from distillery.teachers.causal.prompt import VERBALIZERS_KEY, Prompt, encode_requests

logger = logging.getLogger(__name__)

HEAD = "score"
"""Classification head of the ``*ForSequenceClassification`` decoders of transformers."""


@dataclass(frozen=True)
class FormFacts:
    """How faithful the classifier form's tokens are to lm-eval's."""

    prefix_space: bool
    """The space before ``{text}`` moved into the text (byte-level ``add_prefix_space``)."""
    token_match: float
    """Share of the probe texts whose tokens equal lm-eval's context tokens."""
    n_probe: int


def verbalizer_ids(tokenizer, prompt: Prompt) -> list[int]:
    """The one token each verbalizer adds after the prompt (index = class id).

    Raises:
        UserError: a verbalizer is more than one token after the prompt (the classifier form
            scores one next token), naming ``teacher.verbalizers``.
    """
    prompt.check_tokens(tokenizer)
    probe = prompt.context("a", "b" if prompt.pair else None)
    conts = encode_requests(tokenizer, prompt, [probe], None, formatted=True)[0].continuations
    long = [(v, c) for v, c in zip(prompt.verbalizers, conts, strict=True) if len(c) != 1]
    if long:
        raise UserError(f"{VERBALIZERS_KEY}: the pipeline's teacher scores one next token per "
                        f"class, but {', '.join(f'{v!r} is {len(c)} tokens' for v, c in long)} "
                        "after the prompt; pick one-token verbalizers (e.g. ' yes' / ' no')")
    return [c[0] for c in conts]


def _pieces(prompt: Prompt) -> tuple[str, str | None, str]:
    """``(before text, between text and text_pair or None, after)``; the context's trailing
    whitespace is dropped, as lm-eval moves it into the continuation."""
    before, rest = prompt.template.split("{text}", 1)
    if prompt.pair:
        mid, after = rest.split("{text_pair}", 1)
        return before, mid, after.rstrip()
    return before, None, rest.rstrip()


def _specials(tokenizer) -> tuple[list[int], list[int]]:
    """Ids the tokenizer's own post-processor puts before and after a text (e.g. BOS)."""
    full = tokenizer("x")["input_ids"]
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i:i + len(bare)] == bare:
            return full[:i], full[i + len(bare):]
    return [], []


def _piece(tokenizer, text: str, name: str) -> dict:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    return {"id": name, "ids": ids, "tokens": tokenizer.convert_ids_to_tokens(ids)}


def prompted_tokenizer(tokenizer, prompt: Prompt, prefix_space: bool):
    """A copy of ``tokenizer`` whose post-processor wraps every text in ``prompt``.

    Args:
        prefix_space: move the space that ends the text's preceding piece into the text
            (needs a byte-level pre-tokenizer).
    """
    lead, trail = _specials(tokenizer)
    before, mid, after = _pieces(prompt)
    if prefix_space:
        before = before[:-1]
        mid = None if mid is None else mid[:-1]
    tok = copy.deepcopy(tokenizer)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    backend = tok.backend_tokenizer
    if prefix_space:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    start = _piece(tokenizer, before, "<prompt_before>")
    start["ids"], start["tokens"] = lead + start["ids"], \
        tokenizer.convert_ids_to_tokens(lead) + start["tokens"]
    end = _piece(tokenizer, after, "<prompt_after>")
    end["ids"], end["tokens"] = end["ids"] + trail, \
        end["tokens"] + tokenizer.convert_ids_to_tokens(trail)
    pieces = [p for p in (start, end) if p["ids"]]
    single = ([start["id"]] if start["ids"] else []) + ["$A"] \
        + ([end["id"]] if end["ids"] else [])
    pair = None
    if mid is not None:
        middle = _piece(tokenizer, mid, "<prompt_between>")
        pieces += [middle] if middle["ids"] else []
        pair = ([start["id"]] if start["ids"] else []) + ["$A"] \
            + ([middle["id"]] if middle["ids"] else []) + ["$B:0"] \
            + ([end["id"]] if end["ids"] else [])
    backend.post_processor = processors.TemplateProcessing(
        single=single, pair=pair or single + ["$B:0"], special_tokens=pieces)
    return tok


def _byte_level(tokenizer) -> bool:
    return isinstance(tokenizer.backend_tokenizer.pre_tokenizer, pre_tokenizers.ByteLevel)


def _spaced(prompt: Prompt) -> bool:
    before, mid, _ = _pieces(prompt)
    return before.endswith(" ") and (mid is None or mid.endswith(" "))


def token_match(tokenizer, prompted, prompt: Prompt, texts: Sequence[str],
                pairs: Sequence[str] | None) -> float:
    """Share of ``texts`` whose prompted tokens equal lm-eval's context tokens (untruncated)."""
    if not texts:
        return 1.0
    want = [r.context for r in encode_requests(tokenizer, prompt, texts, pairs)]
    got = prompted(list(texts), None if pairs is None else list(pairs))["input_ids"]
    return sum(a == list(b) for a, b in zip(want, got, strict=True)) / len(texts)


def choose_tokenizer(tokenizer, prompt: Prompt, texts: Sequence[str],
                     pairs: Sequence[str] | None = None):
    """The prompted tokenizer closest to lm-eval's tokens on ``texts``.

    Returns:
        ``(tokenizer, FormFacts)``.
    """
    options = [False] + ([True] if _byte_level(tokenizer) and _spaced(prompt) else [])
    best = None
    for prefix_space in options:
        prompted = prompted_tokenizer(tokenizer, prompt, prefix_space)
        match = token_match(tokenizer, prompted, prompt, texts, pairs)
        if best is None or match > best[1].token_match:
            best = (prompted, FormFacts(prefix_space, match, len(texts)))
    return best


def to_sequence_classifier(model: PreTrainedModel, tokenizer, prompt: Prompt,
                           probe: Sequence[str] = (), probe_pairs: Sequence[str] | None = None):
    """The classifier form of a (merged) causal LM with ``prompt``.

    Args:
        probe / probe_pairs: texts on which to match lm-eval's tokenisation (e.g. a few
            hundred train texts).

    Returns:
        ``(classifier, tokenizer, FormFacts)``; the classifier's config keeps the prompt in
        ``distillery_prompt`` and has the label names.

    Raises:
        UserError: a verbalizer is more than one token (:func:`verbalizer_ids`).
    """
    if hasattr(model, "peft_config"):
        raise ValueError("merge the LoRA adapters first (finetune.merge)")
    ids = verbalizer_ids(tokenizer, prompt)
    tok, facts = choose_tokenizer(tokenizer, prompt, probe, probe_pairs)
    config = copy.deepcopy(model.config)
    config.architectures = None
    config.num_labels = len(prompt.labels)
    config.id2label = dict(enumerate(prompt.labels))
    config.label2id = {name: i for i, name in enumerate(prompt.labels)}
    config.pad_token_id = tok.pad_token_id
    setattr(config, PROMPT_ATTR, prompt.to_dict())
    classifier = AutoModelForSequenceClassification.from_config(config, dtype=model.dtype)
    classifier.base_model.load_state_dict(model.base_model.state_dict())
    head = getattr(classifier, HEAD)
    with torch.no_grad():
        head.weight.copy_(model.get_output_embeddings().weight[ids])
    logger.info("classifier form: verbalizer tokens %s, prefix space %s, %.1f%% of %d probe "
                "texts tokenised as lm-eval does", ids, facts.prefix_space,
                100 * facts.token_match, facts.n_probe)
    return classifier.eval(), tok, facts


def save(classifier: PreTrainedModel, tokenizer, out: str | Path) -> None:
    """Save the classifier form atomically (safetensors, tokenizer marked as a generic fast
    tokenizer; :func:`distillery.modeling.loading.load_tokenizer` loads it as such)."""
    with atomic_path(out) as tmp:
        classifier.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        cfg_file = Path(tmp) / "tokenizer_config.json"
        cfg = json.loads(cfg_file.read_text())
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg_file.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


__all__ = ["FormFacts", "choose_tokenizer", "is_prompted", "prompted_tokenizer",
           "save", "to_sequence_classifier", "token_match", "verbalizer_ids"]
