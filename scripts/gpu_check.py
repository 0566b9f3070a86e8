"""One-off GPU check: latency, reduced-precision accuracy and training speed of the pipeline's
teacher architecture and student on a CUDA machine, measured side by side with its CPU.

Two modes:

* ``python scripts/gpu_check.py --make-assets .gpu`` (where the pipeline ran) writes a small
  folder that can travel to a GPU machine: the teacher's config and tokenizer (no weights: its
  latency is measured with random weights of its architecture), the student with its weights
  rounded to fp16 (half the bytes), the prepared eval and train splits with their label names,
  and ``meta.json`` (``teacher.max_length`` of ``params.yaml``, what was rounded).
* ``PYTHONPATH=src python3 scripts/gpu_check.py --assets .gpu --out gpu.json [--quick]``
  measures and writes one JSON file (rewritten after every section, so a crash keeps the
  sections done), logging as it goes:

  1. ``environment``: versions, the GPU, bf16 support.
  2. ``latency``: teacher and student forward passes as a caller sees them (inputs already on
     the device; the time includes ``model(**inputs)`` and ``torch.cuda.synchronize()``) at
     batch 1 and 64 on real eval sentences: cpu fp32, cuda fp32, cuda under the project's
     autocast, cuda ``.half()``; interleaved round by round; median / p90 and speed-up ratios.
  3. ``accuracy``: the student's eval logits through ``measure.evaluate.predict_logits`` in
     the four precisions (for cuda fp32 and half its autocast is switched off, else they
     would compute in bf16): accuracy, macro-F1, max |delta logit| and agreement vs cpu fp32.
  4. ``training``: ``modeling.training.train`` steps of the student on cpu and cuda, same
     schedule and seed: steps/s and losses.

Without CUDA every cuda part is recorded as ``{"skipped": <reason>}``. The check imports only
torch, transformers, numpy, scikit-learn, tqdm and safetensors (``--make-assets`` also pyyaml),
so it runs from a source checkout without installing the project. Exit status 1 if a section
failed (its error is in ``errors``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the GPU machine has no network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from distillery.core.device import autocast, autocast_dtype, model_device  # noqa: E402
from distillery.core.io import (  # noqa: E402
    UserError,
    atomic_path,
    seed_everything,
    setup_logging,
    write_json,
)
from distillery.data.prepared import LABELS_FILE, Split, encode, read_labels, read_split  # noqa: E402
from distillery.measure import evaluate  # noqa: E402
from distillery.measure.bench import time_calls  # noqa: E402
from distillery.modeling.training import TrainConfig, train  # noqa: E402

logger = logging.getLogger("gpu_check")

VARIANTS = ("cpu_fp32", "cuda_fp32", "cuda_autocast", "cuda_half")
BATCH = 64
"""Rows of the batched latency inputs."""
SEED = 0
LR = 1.0e-4
"""Learning rate of the training runs (``distill.lr`` of params.yaml)."""
TRAIN_STEPS = 60
"""``TrainConfig.steps`` of both training runs: the same warm-up/decay schedule, so the CPU run,
stopped early, follows the same learning rates and batches as the first steps on cuda."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".gguf")
DEFAULT_MAX_LENGTH = 128
"""Tokens per example when ``params.yaml`` has no ``teacher.max_length``."""


@dataclass(frozen=True)
class Settings:
    """How much to measure: calls per interleaved round and training steps."""

    rounds: int
    b1_cpu: int
    """Batch-1 calls per round, cpu (per model)."""
    b64_cpu: int
    b1_cuda: int
    b64_cuda: int
    warmup_cpu: int
    warmup_cuda: int
    eval_limit: int | None
    """First examples of eval scored in ``accuracy`` (None = all)."""
    cpu_train_steps: int
    cuda_train_steps: int
    n_singles: int = 64
    """Distinct eval sentences cycled through at batch 1."""
    n_batches: int = 4
    """Distinct batches of 64 eval sentences cycled through."""


FULL = Settings(rounds=5, b1_cpu=8, b64_cpu=2, b1_cuda=60, b64_cuda=20, warmup_cpu=3,
                warmup_cuda=10, eval_limit=None, cpu_train_steps=20, cuda_train_steps=60)
QUICK = Settings(rounds=2, b1_cpu=3, b64_cpu=1, b1_cuda=5, b64_cuda=2, warmup_cpu=1,
                 warmup_cuda=2, eval_limit=256, cpu_train_steps=4, cuda_train_steps=10)


# --------------------------------------------------------------------------- assets


def make_assets(out: Path, teacher: Path, student: Path, prepared: Path,
                params: Path | None) -> dict[str, Any]:
    """Write the assets folder ``out`` (atomically) and return its ``meta.json``.

    Args:
        teacher: the teacher's model folder; only its config and tokenizer files are copied.
        student: the student's folder; ``model.safetensors`` is written with every floating
            tensor rounded to fp16, the other files copied.
        prepared: the prepared-data folder; ``eval.jsonl``, ``train.jsonl`` and the labels.
        params: ``params.yaml`` whose ``teacher.max_length`` the check tokenises with.
    """
    import safetensors.torch

    weights = student / "model.safetensors"
    if not weights.is_file():
        raise UserError(f"{weights} not found: the student must be one safetensors file")
    with atomic_path(out) as tmp:
        for src, name in ((teacher, "teacher"), (student, "student")):
            (tmp / name).mkdir(parents=True)
            for f in sorted(p for p in src.iterdir() if p.is_file()):
                if not f.name.endswith(WEIGHT_SUFFIXES):
                    (tmp / name / f.name).write_bytes(f.read_bytes())
        state = safetensors.torch.load_file(str(weights))
        half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        safetensors.torch.save_file(half, str(tmp / "student" / weights.name),
                                    metadata={"format": "pt"})
        (tmp / "prepared").mkdir()
        for name in ("eval.jsonl", "train.jsonl", LABELS_FILE):
            (tmp / "prepared" / name).write_bytes((prepared / name).read_bytes())
        meta = {"max_length": _max_length(params), "params": str(params),
                "teacher": {"from": str(teacher), "weights": "none (config and tokenizer only)"},
                "student": {"from": str(student), **_rounding(state, half)},
                "prepared": {"from": str(prepared)}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("wrote %s (%.1f MB)", out, sum(f.stat().st_size for f in out.rglob("*")
                                               if f.is_file()) / 1e6)
    return meta


def _max_length(params: Path | None) -> int:
    if params is None or not params.is_file():
        return DEFAULT_MAX_LENGTH
    import yaml

    return int((yaml.safe_load(params.read_text()).get("teacher") or {})
               .get("max_length", DEFAULT_MAX_LENGTH))


def _rounding(state: dict[str, torch.Tensor], half: dict[str, torch.Tensor]) -> dict[str, Any]:
    """What rounding the student's weights to fp16 did, measured."""
    floats = [k for k, v in state.items() if v.is_floating_point()]
    err = max(float((half[k].float() - state[k].float()).abs().max()) for k in floats)
    return {"weights": "fp16-rounded copy of the fp32 model.safetensors (loaded back as fp32)",
            "source_dtypes": sorted({str(state[k].dtype) for k in floats}),
            "n_params": int(sum(state[k].numel() for k in floats)),
            "max_abs_rounding_error": err,
            "nonfinite_after_rounding": int(sum((~half[k].isfinite()).sum() for k in floats))}


def load_tokenizer(folder: Path):
    """The folder's tokenizer (the generic fast tokenizer of ``tokenizer.json`` if the
    installed transformers cannot read the saved tokenizer config)."""
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:  # another transformers version than the one that saved it
        logger.warning("AutoTokenizer failed on %s (%s); using tokenizer.json", folder, err)
        from transformers import PreTrainedTokenizerFast

        cfg = json.loads((folder / "tokenizer_config.json").read_text())
        special = {k: cfg[k] for k in ("cls_token", "sep_token", "pad_token", "unk_token",
                                       "mask_token") if isinstance(cfg.get(k), str)}
        return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **special)


def load_student(folder: Path) -> torch.nn.Module:
    """The student in fp32 on the CPU, eval mode."""
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32)
    return model.float().eval()


def random_teacher(folder: Path) -> torch.nn.Module:
    """A classifier of the teacher's config with seeded random weights, fp32, eval mode."""
    torch.manual_seed(SEED)
    config = AutoConfig.from_pretrained(str(folder))
    return AutoModelForSequenceClassification.from_config(config).float().eval()


# --------------------------------------------------------------------------- environment


def cuda_skip_reason() -> str | None:
    """Why the cuda variants cannot run here, or None when they can."""
    if torch.cuda.is_available():
        return None
    return "no CUDA device visible (torch.cuda.is_available() is False)"


def environment() -> dict[str, Any]:
    """Versions, threads and the GPU, as seen by torch."""
    env: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "transformers": transformers.__version__,
        "numpy": np.__version__, "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_available": torch.cuda.is_available(),
    }
    if not torch.cuda.is_available():
        return env | {"device_name": None, "bf16_supported": None}
    props = torch.cuda.get_device_properties(0)
    return env | {
        "device_name": torch.cuda.get_device_name(0), "device_count": torch.cuda.device_count(),
        "capability": f"{props.major}.{props.minor}",
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "autocast_dtype": str(autocast_dtype(torch.device("cuda"))),
        "cudnn": torch.backends.cudnn.version(),
    }


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


# --------------------------------------------------------------------------- latency


def variant_models(model: torch.nn.Module, skip: str | None) -> dict[str, Any]:
    """``variant -> (model, use autocast)``, or the reason it is skipped. ``model`` (cpu fp32)
    is cpu_fp32; cuda_fp32 and cuda_autocast share one fp32 copy on the GPU; cuda_half has
    its own ``.half()`` copy."""
    out: dict[str, Any] = {"cpu_fp32": (model, False)}
    if skip is not None:
        return out | dict.fromkeys(VARIANTS[1:], skip)
    gpu = copy.deepcopy(model).to("cuda").eval()
    return out | {"cuda_fp32": (gpu, False), "cuda_autocast": (gpu, True),
                  "cuda_half": (copy.deepcopy(model).half().to("cuda").eval(), False)}


def make_call(model: torch.nn.Module, feeds: list[dict[str, torch.Tensor]],
              amp: bool) -> Callable[[int], object]:
    """``call(i)``: one forward on ``feeds[i % len(feeds)]`` (already on the model's device) as
    a caller sees it: inference mode, the project's autocast when ``amp``, waiting for the GPU."""
    device = model_device(model)

    def call(i: int) -> object:
        with torch.inference_mode(), autocast(device) if amp else contextlib.nullcontext():
            logits = model(**feeds[i % len(feeds)]).logits  # (B, C)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return logits

    return call


def interleave(calls: dict[str, Callable[[int], object]], per_round: dict[str, int],
               warmup: dict[str, int], rounds: int) -> dict[str, np.ndarray]:
    """Seconds of every call: each entry is warmed up, then every round times each entry in
    turn (the order rotates by one each round) for ``per_round`` calls, so drift of the
    machine lands on all of them alike. Built on :func:`distillery.measure.bench.time_calls`."""
    names = list(calls)
    for name in names:
        time_calls(calls[name], warmup[name], 0)
    times: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for r in tqdm(range(rounds), desc="latency rounds", leave=False):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            k = per_round[name]
            times[name].append(time_calls(lambda i: calls[name](r * k + i), 0, k))
    return {n: np.concatenate(t) for n, t in times.items()}


def latency_feeds(tokenizer, split: Split, max_length: int,
                  s: Settings) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Tokenised eval sentences (cpu tensors, dynamic padding): ``batch_1`` one sentence per
    input, ``batch_64`` consecutive sentences (wrapping around a short split)."""
    def enc(idx: list[int]) -> dict[str, torch.Tensor]:
        pairs = None if split.pairs is None else [split.pairs[i] for i in idx]
        return encode(tokenizer, [split.texts[i] for i in idx], pairs, max_length)

    n = len(split)
    return {"batch_1": [enc([i % n]) for i in range(s.n_singles)],
            f"batch_{BATCH}": [enc([(k * BATCH + j) % n for j in range(BATCH)])
                               for k in range(s.n_batches)]}


def measure_latency(model: torch.nn.Module, feeds: dict[str, list[dict[str, torch.Tensor]]],
                    s: Settings, skip: str | None) -> dict[str, Any]:
    """Interleaved latency of every variant at both batch sizes, with speed-up ratios."""
    variants = variant_models(model, skip)
    calls, per_round, warmup = {}, {}, {}
    for name, v in variants.items():
        if isinstance(v, str):
            continue
        net, amp = v
        device = model_device(net)
        cpu = device.type == "cpu"
        for batch, inputs in feeds.items():
            key = f"{name}/{batch}"
            calls[key] = make_call(net, [{k: t.to(device) for k, t in x.items()}
                                         for x in inputs], amp)
            one = batch == "batch_1"
            per_round[key] = (s.b1_cpu if one else s.b64_cpu) if cpu else \
                (s.b1_cuda if one else s.b64_cuda)
            warmup[key] = s.warmup_cpu if cpu else s.warmup_cuda
    times = interleave(calls, per_round, warmup, s.rounds)
    out: dict[str, Any] = {v: ({"skipped": m} if isinstance(m, str) else {})
                           for v, m in variants.items()}
    for key, t in times.items():
        name, batch = key.split("/")
        out[name][batch] = {"median_ms": float(np.median(t) * 1e3),
                            "p90_ms": float(np.percentile(t, 90) * 1e3),
                            "min_ms": float(t.min() * 1e3), "calls": int(len(t))}
    del variants, calls
    _free_gpu()
    return {"variants": out, **speedups(out, list(feeds))}


def speedups(variants: dict[str, Any], batches: list[str]) -> dict[str, Any]:
    """Ratios of median latencies (> 1: the variant is faster than the reference)."""
    out: dict[str, Any] = {}
    for ref in ("cuda_fp32", "cpu_fp32"):
        out[f"speedup_vs_{ref}"] = {
            name: {b: variants[ref][b]["median_ms"] / v[b]["median_ms"] for b in batches}
            for name, v in variants.items() if "skipped" not in v and "skipped" not in
            variants[ref]}
    return out


def latency_section(assets: Path, meta: dict[str, Any], split: Split, s: Settings,
                    skip: str | None) -> dict[str, Any]:
    """Latency of the teacher architecture (random weights) and of the student."""
    out = {}
    for who in ("teacher", "student"):
        folder = assets / who
        tokenizer = load_tokenizer(folder)
        model = random_teacher(folder) if who == "teacher" else load_student(folder)
        feeds = latency_feeds(tokenizer, split, meta["max_length"], s)
        logger.info("latency: %s", who)
        out[who] = {"weights": ("random (config of models/teacher)" if who == "teacher"
                                else meta["student"]["weights"]),
                    "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                    "attn_implementation": getattr(model.config, "_attn_implementation", None),
                    "tokens": {b: _token_stats(v) for b, v in feeds.items()},
                    **measure_latency(model, feeds, s, skip)}
        _log_latency(who, out[who]["variants"])
    return out


def _token_stats(feeds: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Padded length of the inputs (tokens per row), over the inputs cycled through."""
    n = np.array([x["input_ids"].shape[1] for x in feeds])
    return {"min": int(n.min()), "median": float(np.median(n)), "max": int(n.max())}


def _log_latency(who: str, variants: dict[str, Any]) -> None:
    for name, v in variants.items():
        if "skipped" in v:
            logger.info("  %-14s skipped: %s", name, v["skipped"])
            continue
        logger.info("  %s %-14s %s", who, name, "  ".join(
            f"{b}: median {x['median_ms']:.3f} ms p90 {x['p90_ms']:.3f} ms"
            for b, x in v.items()))


def _free_gpu() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- accuracy

PRECISION = {
    "cpu_fp32": "fp32 weights and compute (predict_logits' autocast is a no-op on the CPU)",
    "cuda_fp32": "fp32 weights and compute: predict_logits' autocast switched off for this "
                 "variant (float32 matmul precision: {matmul})",
    "cuda_autocast": "predict_logits as the pipeline calls it on a GPU: fp32 weights, autocast "
                     "to {amp}",
    "cuda_half": "model.half(): fp16 weights and activations; predict_logits' autocast switched "
                 "off (it would recast the fp16 matmuls to {amp})",
}


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def variant_logits(model: torch.nn.Module, amp: bool, split: Split, tokenizer,
                   max_length: int, desc: str) -> np.ndarray:
    """``(N, C)`` logits of :func:`distillery.measure.evaluate.predict_logits`, with its autocast
    (on a GPU) kept when ``amp`` and replaced by a no-op otherwise."""
    patch = contextlib.nullcontext() if amp else mock.patch.object(evaluate, "autocast",
                                                                     _no_autocast)
    with patch:
        return evaluate.predict_logits(model, split, tokenizer, max_length, desc=desc)


def compare(logits: np.ndarray, ref: np.ndarray, labels: list[int]) -> dict[str, Any]:
    """Scores of ``logits`` and how they differ from the reference ``ref`` (cpu fp32): max and
    mean |delta logit|, argmax agreement, and the accuracy difference with a paired bootstrap
    95% interval over the eval examples (2000 resamples)."""
    y = np.asarray(labels)
    right, right_ref = logits.argmax(-1) == y, ref.argmax(-1) == y
    diff = right.astype(float) - right_ref.astype(float)  # (N,)
    rng = np.random.default_rng(SEED)
    boot = diff[rng.integers(0, len(diff), size=(2000, len(diff)))].mean(1)
    delta = np.abs(logits - ref)
    return {**evaluate.scores(logits, labels),
            "max_abs_dlogit_vs_cpu_fp32": float(delta.max()),
            "mean_abs_dlogit_vs_cpu_fp32": float(delta.mean()),
            "agree_with_cpu_fp32": float((logits.argmax(-1) == ref.argmax(-1)).mean()),
            "n_disagree_with_cpu_fp32": int((logits.argmax(-1) != ref.argmax(-1)).sum()),
            "accuracy_delta_vs_cpu_fp32": float(diff.mean()),
            "accuracy_delta_ci95": [float(np.percentile(boot, 2.5)),
                                    float(np.percentile(boot, 97.5))]}


def accuracy_section(assets: Path, meta: dict[str, Any], split: Split, s: Settings,
                     skip: str | None) -> dict[str, Any]:
    """The student's eval scores in every precision, against cpu fp32."""
    if s.eval_limit is not None:
        split = split.subset(range(min(s.eval_limit, len(split))))
    tokenizer = load_tokenizer(assets / "student")
    model = load_student(assets / "student")
    amp = str(autocast_dtype(torch.device("cuda"))) if skip is None else None
    fmt = {"matmul": torch.get_float32_matmul_precision(), "amp": amp}
    longest = max(len(ids) for ids in tokenizer(split.texts, split.pairs)["input_ids"])
    out: dict[str, Any] = {"weights": meta["student"]["weights"], "n_eval": len(split),
                           "max_length": meta["max_length"], "longest_eval_tokens": longest,
                           "variants": {}}
    ref = variant_logits(model, False, split, tokenizer, meta["max_length"], "eval cpu_fp32")
    for name, v in variant_models(model, skip).items():
        if isinstance(v, str):
            out["variants"][name] = {"skipped": v}
            continue
        try:
            logits = ref if name == "cpu_fp32" else variant_logits(
                *v, split, tokenizer, meta["max_length"], f"eval {name}")
        except Exception as err:  # one variant failing must not lose the others
            logger.exception("accuracy: %s failed", name)
            out["variants"][name] = {"error": f"{type(err).__name__}: {err}"}
            continue
        r = out["variants"][name] = {"precision": PRECISION[name].format(**fmt),
                                     **compare(logits, ref, split.labels)}
        logger.info("  %-14s accuracy %.4f macro-F1 %.4f max|dlogit| %.3g agree %.4f", name,
                    r["accuracy"], r["macro_f1"], r["max_abs_dlogit_vs_cpu_fp32"],
                    r["agree_with_cpu_fp32"])
    _free_gpu()
    return out


# --------------------------------------------------------------------------- training


def train_run(assets: Path, split: Split, max_length: int, device: str,
              stop_after: int) -> dict[str, Any]:
    """``stop_after`` steps of :func:`distillery.modeling.training.train` on ``device`` (of a
    ``TRAIN_STEPS`` schedule), timed per step; seeded the same way on every device."""
    seed_everything(SEED)
    tokenizer = load_tokenizer(assets / "student")
    model = load_student(assets / "student").to(device)
    cfg = TrainConfig(lr=LR, batch_size=32, max_length=max_length, steps=TRAIN_STEPS, seed=SEED)
    stamps: list[float] = []

    def on_step(step: int, loss: float, _model: torch.nn.Module) -> bool:
        stamps.append(time.perf_counter())  # after loss.item(): the GPU has finished the step
        return step >= stop_after

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    losses = train(model, split, tokenizer, cfg, desc=f"train {device}", on_step=on_step)
    wall = time.perf_counter() - start
    warm = 5 if len(losses) >= 10 else 1
    out = {"steps": len(losses), "schedule_steps": TRAIN_STEPS, "batch_size": cfg.batch_size,
           "lr": LR, "seed": SEED, "wall_s": wall, "steps_per_s": len(losses) / wall,
           "steady_steps_per_s": (len(losses) - warm) / (stamps[-1] - stamps[warm - 1]),
           "steady_after_step": warm, "final_loss": losses[-1],
           "losses": [round(x, 5) for x in losses]}
    if device == "cuda":
        out |= {"autocast_dtype": str(autocast_dtype(torch.device("cuda"))),
                "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
    del model
    _free_gpu()
    return out


def training_section(assets: Path, meta: dict[str, Any], s: Settings,
                     skip: str | None) -> dict[str, Any]:
    """Training speed and losses on cpu and cuda, same schedule, seed and batches."""
    split = read_split(assets / "prepared" / "train.jsonl")
    out: dict[str, Any] = {
        "timed": "whole train() steps as the pipeline runs them: tokenising each batch, "
                 "forward, backward, optimiser step, loss.item()",
        "cpu": train_run(assets, split, meta["max_length"], "cpu", s.cpu_train_steps)}
    logger.info("  cpu  %.2f steps/s (steady %.2f), loss %.4f after %d steps",
                out["cpu"]["steps_per_s"], out["cpu"]["steady_steps_per_s"],
                out["cpu"]["final_loss"], out["cpu"]["steps"])
    if skip is not None:
        return out | {"cuda": {"skipped": skip}}
    out["cuda"] = train_run(assets, split, meta["max_length"], "cuda", s.cuda_train_steps)
    c = out["cuda"]
    n = min(out["cpu"]["steps"], c["steps"])
    out["cuda_vs_cpu_steady_speedup"] = c["steady_steps_per_s"] / out["cpu"]["steady_steps_per_s"]
    out[f"loss_at_step_{n}"] = {"cpu": out["cpu"]["losses"][n - 1], "cuda": c["losses"][n - 1]}
    out["note"] = ("same seed, schedule and batch order; dropout masks come from each device's "
                   "own RNG, so the losses may differ by more than rounding")
    logger.info("  cuda %.2f steps/s (steady %.2f), loss %.4f after %d steps", c["steps_per_s"],
                c["steady_steps_per_s"], c["final_loss"], c["steps"])
    return out


# --------------------------------------------------------------------------- main


def run_check(assets: Path, out: Path, quick: bool, threads: int) -> dict[str, Any]:
    """Measure every section and write ``out`` after each; return the result."""
    start = time.perf_counter()
    s = QUICK if quick else FULL
    torch.set_num_threads(threads)
    meta = json.loads((assets / "meta.json").read_text())
    skip = cuda_skip_reason()
    result: dict[str, Any] = {"script": "scripts/gpu_check.py", "mode": "quick" if quick
                              else "full", "assets": meta, "settings": asdict(s),
                              "environment": environment(), "skipped": {}, "errors": {},
                              "section_s": {}}
    if skip is not None:
        result["skipped"]["cuda"] = skip
        logger.warning("cuda parts skipped: %s", skip)
    logger.info("environment: %s", result["environment"])
    eval_split = read_split(assets / "prepared" / "eval.jsonl")
    result["labels"] = read_labels(assets / "prepared" / LABELS_FILE)
    sections = {
        "latency": lambda: latency_section(assets, meta, eval_split, s, skip),
        "accuracy": lambda: accuracy_section(assets, meta, eval_split, s, skip),
        "training": lambda: training_section(assets, meta, s, skip),
    }
    for name, fn in sections.items():
        logger.info("section %s", name)
        t0 = time.perf_counter()
        try:
            result[name] = fn()
        except Exception as err:  # keep the other sections' measurements
            logger.exception("section %s failed", name)
            result["errors"][name] = f"{type(err).__name__}: {err}"
        result["errors"] |= {f"{name}.{v}": r["error"] for v, r in
                             result.get(name, {}).get("variants", {}).items() if "error" in r}
        result["section_s"][name] = round(time.perf_counter() - t0, 2)
        write_json(out, result)
    result["runtime_s"] = round(time.perf_counter() - start, 2)
    write_json(out, result)
    logger.info("wrote %s in %.1f s; errors: %s", out, result["runtime_s"],
                result["errors"] or "none")
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--make-assets", type=Path, metavar="DIR",
                    help="write the assets folder DIR and exit")
    ap.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ap.add_argument("--student", type=Path, default=Path("models/student"))
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--assets", type=Path, help="assets folder written by --make-assets")
    ap.add_argument("--out", type=Path, help="the JSON file to write")
    ap.add_argument("--quick", action="store_true", help="a small CPU smoke run")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch CPU threads (default: every core)")
    args = ap.parse_args(argv)
    setup_logging()
    if args.make_assets is not None:
        make_assets(args.make_assets, args.teacher, args.student, args.prepared, args.params)
        return 0
    if args.assets is None or args.out is None:
        ap.error("--assets and --out are required (or --make-assets DIR)")
    result = run_check(args.assets, args.out, args.quick, args.threads)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
