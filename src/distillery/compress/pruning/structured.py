"""Structured pruning: attention heads and FFN neurons physically removed (a real speed-up).

1. :func:`importance` scores every head and every FFN neuron with the first-order Taylor
   estimate of the loss change when it is removed, ``|sum_tokens act * dL/dact|``, averaged
   over labelled examples: heads as in Michel, Levy & Neubig (2019), "Are Sixteen Heads Really
   Better than One?" (NeurIPS), neurons as in Molchanov et al. (2017), "Pruning Convolutional
   Neural Networks for Resource Efficient Inference" (ICLR).
2. :func:`prune` keeps the top heads and neurons of every layer (the same fraction in each)
   and slices the ``nn.Linear`` weights: q / k / v output rows and attention-output input
   columns per head, FFN-in output rows and FFN-out input columns per neuron.
3. Layers may now differ in shape, which the config cannot describe: the kept counts go to
   ``config.distillery_pruned = {"heads": [...], "intermediate": [...]}`` (saved with the
   config), and :func:`reshape` shrinks a model freshly built from such a config so that the
   saved state dict loads strictly (see :func:`distillery.modeling.loading.load_classifier`).

The modules involved are named per family (:class:`distillery.modeling.families.Structure`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from distillery.data.prepared import Split, batches
from distillery.modeling import families
from distillery.modeling.families import Structure
from distillery.modeling.families.base import REGISTRY

logger = logging.getLogger(__name__)

SPEC_ATTR = "distillery_pruned"
"""Config attribute recording the per-layer shapes of a pruned model."""


@dataclass
class Scores:
    """Importance of each head and FFN neuron (higher = more useful).

    Lists hold one tensor per layer, so that already pruned layers of different sizes fit;
    for an unpruned model ``torch.stack(heads)`` is ``(L, H)`` and ``torch.stack(neurons)``
    is ``(L, I)``.
    """

    heads: list[torch.Tensor]
    """Per layer, ``(H_l,)`` head scores."""
    neurons: list[torch.Tensor]
    """Per layer, ``(I_l,)`` FFN neuron scores."""


def structure(model: PreTrainedModel) -> Structure:
    """The layer structure of ``model``'s family.

    Raises:
        ValueError: the family does not support structured pruning (the message lists those
            that do).
    """
    family = families.get(model)
    if family.structure is None:
        ok = sorted(t for t, f in REGISTRY.items() if f.structure is not None)
        raise ValueError(f"structured pruning is not supported for {model.config.model_type}; "
                         f"supported: {', '.join(ok)} (use compress.method: unstructured)")
    return family.structure


def _counts(model: PreTrainedModel) -> tuple[list[int], list[int], int]:
    """Current heads and neurons of every layer, and the head size."""
    s = structure(model)
    heads, neurons, head_size = [], [], 0
    for layer in families.layers(model):
        n = int(getattr(layer.get_submodule(s.attention), s.heads_attr))
        heads.append(n)
        head_size = layer.get_submodule(s.qkv[0]).out_features // n
        neurons.append(layer.get_submodule(s.ffn_in).out_features)
    return heads, neurons, head_size


@contextlib.contextmanager
def _grad_everywhere(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) with every parameter requiring grad (so that activations do,
    even under frozen embeddings); restores both on exit."""
    frozen = [p for p in model.parameters() if not p.requires_grad]
    was_training = model.training
    for p in frozen:
        p.requires_grad_(True)
    model.eval()
    try:
        with torch.enable_grad():
            yield
    finally:
        for p in frozen:
            p.requires_grad_(False)
        model.train(was_training)


def importance(
    model: PreTrainedModel,
    split: Split,
    tokenizer,
    max_length: int,
    batch_size: int = 32,
    n_batches: int = 8,
    seed: int = 0,
) -> Scores:
    """Taylor first-order importance of every head and FFN neuron on labelled examples.

    Forward pre-hooks catch the input of each layer's attention-output Linear (the concatenated
    per-head context, ``(B, T, H * d)``) and of its FFN-out Linear (the activated intermediate,
    ``(B, T, I)``). For the cross-entropy ``L`` of a batch, a head scores
    ``sum_examples |sum_{tokens, d} act * dL/dact|`` over its ``d`` columns (Michel et al.,
    2019), a neuron the same over its one column (Molchanov et al., 2017); sums are divided
    by the number of examples. A head or neuron whose output weights are zero scores 0.

    Args:
        model: a sequence classifier of a family with a :class:`Structure`.
        split: examples to score on; unlabelled ones (label ``-1``) are skipped.
        tokenizer: tokenizer of ``model``.
        max_length: tokens per example.
        batch_size: examples per batch.
        n_batches: batches used (a seeded random sample of the labelled examples).
        seed: seed of the sample.

    Returns:
        Non-negative, finite scores per layer.

    Raises:
        ValueError: unsupported family, or no labelled example in ``split``.
    """
    s = structure(model)
    labelled = split.subset([i for i, y in enumerate(split.labels) if y >= 0])
    if not len(labelled):
        raise ValueError("importance needs labelled examples (every label is -1)")
    layers = families.layers(model)
    acts: dict[tuple[str, int], torch.Tensor] = {}

    def catch(kind: str, i: int):
        def hook(_module, args):
            acts[kind, i] = args[0]  # (B, T, H * d) or (B, T, I)
        return hook

    handles = [layer.get_submodule(path).register_forward_pre_hook(catch(kind, i))
               for i, layer in enumerate(layers)
               for kind, path in (("heads", s.attention_out), ("neurons", s.ffn_out))]
    heads, neurons, head_size = _counts(model)
    scores = Scores([torch.zeros(h) for h in heads], [torch.zeros(n) for n in neurons])
    device = next(model.parameters()).device
    seen = 0
    it = batches(labelled, tokenizer, batch_size, max_length, shuffle=True, seed=seed)
    total = min(n_batches, -(-len(labelled) // batch_size))
    try:
        with _grad_everywhere(model):
            for step, (enc, labels, _) in enumerate(tqdm(it, total=total, desc="importance",
                                                         leave=False)):
                if step >= n_batches:
                    break
                enc = {k: v.to(device) for k, v in enc.items()}
                loss = F.cross_entropy(model(**enc).logits, labels.to(device))
                keys = list(acts)
                grads = torch.autograd.grad(loss, [acts[k] for k in keys])
                for (kind, i), grad in zip(keys, grads, strict=True):
                    prod = (acts[kind, i] * grad).detach().float()  # (B, T, C)
                    if kind == "heads":
                        prod = prod.unflatten(-1, (heads[i], head_size)).sum(-1)  # (B, T, H)
                    getattr(scores, kind)[i] += prod.sum(1).abs().sum(0).cpu()
                seen += len(labels)
                acts.clear()
    finally:
        for h in handles:
            h.remove()
    return Scores([h / seen for h in scores.heads], [n / seen for n in scores.neurons])


def _keep(score: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices (ascending) of the ``max(1, round(fraction * n))`` highest scores."""
    k = max(1, round(fraction * len(score)))
    return torch.topk(score, k).indices.sort().values


def _slice_linear(linear: torch.nn.Linear, idx: torch.Tensor, dim: int) -> None:
    """Keep rows (``dim=0``: outputs, and the bias) or columns (``dim=1``: inputs) ``idx`` of
    ``linear``, in place."""
    idx = idx.to(linear.weight.device)
    grad = linear.weight.requires_grad
    linear.weight = torch.nn.Parameter(linear.weight.detach().index_select(dim, idx).clone(),
                                       requires_grad=grad)
    if dim == 0:
        if linear.bias is not None:
            linear.bias = torch.nn.Parameter(linear.bias.detach()[idx].clone(),
                                             requires_grad=linear.bias.requires_grad)
        linear.out_features = len(idx)
    else:
        linear.in_features = len(idx)


def _apply(model: PreTrainedModel, heads: list[torch.Tensor], neurons: list[torch.Tensor]) -> None:
    """Keep heads ``heads[l]`` and neurons ``neurons[l]`` of every layer ``l`` and record the
    new shapes in the config."""
    s = structure(model)
    _, _, head_size = _counts(model)
    for layer, h_idx, n_idx in zip(families.layers(model), heads, neurons, strict=True):
        cols = (h_idx[:, None] * head_size + torch.arange(head_size)).flatten()  # (k * d,)
        for path in s.qkv:
            _slice_linear(layer.get_submodule(path), cols, dim=0)
        _slice_linear(layer.get_submodule(s.attention_out), cols, dim=1)
        attention = layer.get_submodule(s.attention)
        setattr(attention, s.heads_attr, len(h_idx))
        if s.all_head_size_attr is not None:
            setattr(attention, s.all_head_size_attr, len(cols))
        _slice_linear(layer.get_submodule(s.ffn_in), n_idx, dim=0)
        _slice_linear(layer.get_submodule(s.ffn_out), n_idx, dim=1)
    setattr(model.config, SPEC_ATTR, {"heads": [len(i) for i in heads],
                                      "intermediate": [len(i) for i in neurons]})


def prune(
    model: PreTrainedModel, keep_heads: float, keep_neurons: float, scores: Scores
) -> dict[str, list[int]]:
    """Remove the least important heads and FFN neurons of every layer, in place.

    Each layer keeps its ``max(1, round(keep_heads * H))`` best heads and
    ``max(1, round(keep_neurons * I))`` best neurons (a uniform fraction per layer).

    Args:
        model: a sequence classifier of a family with a :class:`Structure`.
        keep_heads: fraction of heads kept, in (0, 1].
        keep_neurons: fraction of FFN neurons kept, in (0, 1].
        scores: from :func:`importance` on this model.

    Returns:
        The new shapes, also stored as ``model.config.distillery_pruned``:
        ``{"heads": [per-layer heads], "intermediate": [per-layer neurons]}``.

    Raises:
        ValueError: a fraction out of range, scores of another shape or an unsupported family.
    """
    for name, value in (("keep_heads", keep_heads), ("keep_neurons", keep_neurons)):
        if not 0 < value <= 1:
            raise ValueError(f"{name}: got {value!r}, expected a fraction in (0, 1]")
    heads, neurons, _ = _counts(model)
    if [len(h) for h in scores.heads] != heads or [len(n) for n in scores.neurons] != neurons:
        raise ValueError("scores do not match the model's heads / neurons per layer")
    _apply(model, [_keep(h, keep_heads) for h in scores.heads],
           [_keep(n, keep_neurons) for n in scores.neurons])
    spec = getattr(model.config, SPEC_ATTR)
    logger.info("structured pruning: heads %s -> %s, FFN neurons %s -> %s",
                heads, spec["heads"], neurons, spec["intermediate"])
    return spec


def reshape(model: PreTrainedModel, spec: dict[str, list[int]]) -> None:
    """Shrink a model built from a config to the pruned shapes ``spec`` (leading heads and
    neurons kept; the weights are meant to be overwritten by a saved state dict).

    Args:
        model: freshly built from the config of a pruned model.
        spec: ``config.distillery_pruned`` of that model.

    Raises:
        ValueError: ``spec`` does not fit the model (layer count, sizes).
    """
    heads, neurons, _ = _counts(model)
    want_h, want_n = list(spec.get("heads", [])), list(spec.get("intermediate", []))
    if len(want_h) != len(heads) or len(want_n) != len(neurons) or not all(
        0 < w <= n for w, n in zip(want_h + want_n, heads + neurons, strict=True)
    ):
        raise ValueError(f"config.{SPEC_ATTR}={spec} does not fit a model with heads {heads} "
                         f"and FFN neurons {neurons} per layer")
    _apply(model, [torch.arange(k) for k in want_h], [torch.arange(k) for k in want_n])
