"""Stage ``benchmark``'s measurements: every variant (torch fp32 teacher and student, every
ONNX file of the ``export`` folder) scored on the eval split and timed on each usable execution
provider, the variants of one provider in interleaved rounds (:mod:`distillery.measure.bench`;
GPU sessions through :mod:`distillery.measure.accel`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distillery.config.benchmark import BenchmarkParams
from distillery.core.device import autocast, model_device
from distillery.data.prepared import Split, encode
from distillery.export import onnx_export
from distillery.measure import accel, bench, evaluate, intervals
from distillery.modeling import loading
from distillery.serve.space_app import Encoder

logger = logging.getLogger(__name__)

E2E = "#e2e"
"""Suffix of a variant's end-to-end runner among the timed runs (text in, label out)."""


def inputs(split: Split, tok, max_length: int, n: int, batch_size: int):
    """Batch-1 feeds (one per example) and one padded batch, as int64 numpy arrays."""
    def enc(idx, pad):
        pairs = None if split.pairs is None else [split.pairs[i] for i in idx]
        return encode(tok, [split.texts[i] for i in idx], pairs, max_length, padding=pad,
                      return_tensors="np")
    n = min(n, len(split))
    return [enc([i], False) for i in range(n)], enc(list(range(min(batch_size, n))), True)


def texts(split: Split, n: int) -> list[dict[str, str | None]]:
    """The first ``n`` examples as raw ``{text, pair}`` inputs of end-to-end runners."""
    return [{"text": split.texts[i], "pair": None if split.pairs is None else split.pairs[i]}
            for i in range(min(n, len(split)))]


def torch_e2e(model: torch.nn.Module, tok, max_length: int):
    """Text in, label out, as a caller of the torch model: the pipeline's tokenisation
    (:func:`distillery.data.prepared.encode`), the forward pass, the argmax."""
    device = model_device(model)

    def run(feed: dict) -> int:
        pairs = None if feed["pair"] is None else [feed["pair"]]
        enc = encode(tok, [feed["text"]], pairs, max_length)
        with torch.inference_mode(), autocast(device):
            logits = model(**{k: v.to(device) for k, v in enc.items()}).logits  # (1, C)
        return int(logits[0].argmax())  # waits for the device

    return run


def onnx_e2e(session, folder: str, tok, meta: dict[str, str], max_length: int):
    """Text in, label out, as the Space serves an ONNX file: ``tokenizers`` on the source's
    ``tokenizer.json`` (:class:`distillery.serve.space_app.Encoder`; a causal-LM teacher's
    prompt is part of it), the session, the argmax. Without a ``tokenizer.json`` the
    transformers tokenizer (:func:`distillery.data.prepared.encode`) stands in."""
    names = {i.name for i in session.get_inputs()}
    tokenizer_json = Path(folder) / "tokenizer.json"
    if tokenizer_json.is_file():
        encoder = Encoder(tokenizer_json, max_length, json.loads(meta["inputs"]))

        def feeds_of(text, pair):
            return encoder(text, pair)[0]
    else:
        def feeds_of(text, pair):
            return encode(tok, [text], None if pair is None else [pair], max_length,
                          padding=False, return_tensors="np")

    def run(feed: dict) -> int:
        feeds = feeds_of(feed["text"], feed["pair"])
        (logits,) = session.run(["logits"], {k: v for k, v in feeds.items() if k in names})
        return int(logits[0].argmax())

    return run


def baseline_runner(model):
    """Raw text in, label out (a baseline has no separate tokeniser: this is end to end);
    a ``{"texts", "pairs"}`` feed is one batch."""
    def run(feed: dict):
        if "texts" in feed:
            return model.logits(feed["texts"], feed["pairs"]).argmax(-1)
        pairs = None if feed["pair"] is None else [feed["pair"]]
        return int(model.logits([feed["text"]], pairs)[0].argmax())

    return run


def baseline_variants(folder: str | None) -> list[tuple[str, Path]]:
    """``(variant, folder)`` of every trained baseline in ``folder`` (``baseline-<kind>``)."""
    if folder is None or not Path(folder).is_dir():
        return []
    return [(f"baseline-{d.name}", d) for d in sorted(Path(folder).iterdir()) if d.is_dir()]


def onnx_files(folder: str | Path) -> list[tuple[str, Path, dict[str, str]]]:
    """``(variant, path, metadata)`` of every ONNX file in ``folder``, teachers first."""
    found = []
    for path in sorted(Path(folder).glob("*.onnx")):
        meta = onnx_export.read_metadata(path)
        variant = meta.get("variant") or f"{path.stem.replace('_', '-')}-onnx"
        found.append((variant, path, meta))
    return sorted(found, key=lambda f: (not f[0].startswith("teacher"), f[0]))


@dataclass
class Results:
    """What :func:`run` measured."""

    variants: dict[str, dict] = field(default_factory=dict)
    """variant -> scores, size, parameters, provider, latency and throughput."""
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    """variant -> eval logits."""
    threads: dict[str, int] = field(default_factory=dict)
    """intra-op threads actually used by torch and ONNX Runtime."""
    skipped_variants: dict[str, str] = field(default_factory=dict)
    rounds: dict[str, list[float]] = field(default_factory=dict)
    """variant -> its median batch-1 latency in each interleaved round (ms; end to end where
    measured)."""

    def intervals(self, labels, metric: str) -> dict[str, dict]:
        """95% bootstrap intervals of every variant's accuracy and macro-F1, the paired
        intervals of the differences the report's targets and recommendation rest on, and
        every variant's latency round by round."""
        out: dict[str, dict] = {"scores": {}, "paired": {},
                                "rounds_ms": {k: [round(x, 4) for x in v]
                                              for k, v in self.rounds.items()}}
        for name, logits in self.logits.items():
            out["scores"][name] = {m: [round(x, 6) for x in intervals.score_interval(
                logits, labels, m)] for m in ("accuracy", "macro_f1")}
        for a, b in paired_comparisons(list(self.logits)):
            out["paired"][f"{a} vs {b}"] = intervals.paired_difference(
                self.logits[a], self.logits[b], labels, metric)
        return out


def paired_comparisons(names: list[str]) -> list[tuple[str, str]]:
    """``(a, b)`` pairs scored on the same examples: every student (CPU) against the int8
    and the torch teacher and every baseline, plain against fused int8, unpruned against
    pruned."""
    teachers = [t for t in ("teacher-onnx-int8", "teacher-torch-fp32") if t in names]
    baselines = [n for n in names if n.startswith("baseline")]
    students = [n for n in names if not n.startswith(("teacher", "baseline")) and "@" not in n]
    pairs = [(s, t) for s in students for t in teachers + baselines]
    pairs += [(a, b) for a, b in (("student-onnx-int8-dynamic", "student-onnx-int8"),
                                  ("student-onnx-fp32", "student-pruned-onnx-fp32"))
              if a in names and b in names]
    return pairs


def _score(variant, base, path, meta, provider, dev, tok, t_tok, torch_models, device,
           threads, max_length, p, onnx_dir, res: Results):
    """Logits, runner and facts of one variant on one provider; None when it is skipped."""
    own = t_tok if variant.startswith("teacher") else tok
    if base is not None:
        model = loading.load_classifier(torch_models[base]).to(device)
        logits = evaluate.predict_logits(model, dev, own, max_length)
        runner = bench.torch_runner(model)
        e2e = torch_e2e(model, own, max_length)
        size = sum(loading.dir_size_mb(f) for f in Path(torch_models[base]).glob("*.safetensors"))
        n_params = loading.count_params(model)
    elif meta.get("precision") == "fp16" and provider == "cpu":
        res.skipped_variants[variant] = "fp16 runs on GPU providers only"
        return None
    elif provider == "cpu":
        sess = bench.ort_session(str(path), provider, threads, spinning=False)
        res.threads.setdefault("onnxruntime", sess.get_session_options().intra_op_num_threads)
        # batch 1, as timed and as served: dynamic int8 quantises activations with one scale
        # per batch, so a padded batch of 64 scores differently
        logits = evaluate.onnx_logits(sess, dev, own, max_length, batch_size=1)
        runner = bench.ort_runner(sess)
        source = torch_models["teacher" if variant.startswith("teacher") else "student"]
        e2e = onnx_e2e(sess, source, own, meta, max_length)
    else:  # TensorRT with an explicit shape profile and engine cache; I/O binding
        sess = accel.session(path, provider, input_names=json.loads(meta["inputs"]),
                             max_batch=p.batch_size, max_length=max_length,
                             cache_dir=Path(onnx_dir).parent / "trt_cache")
        logits = evaluate.onnx_logits(sess, dev, own, max_length, p.batch_size)
        runner = accel.io_binding_runner(sess)
        e2e = None  # end to end on the CPU providers only
    if base is None:
        size, n_params = loading.dir_size_mb(path), int(meta.get("n_params", 0))
    facts = {**{k: round(v, 6) for k, v in evaluate.scores(logits, dev.labels).items()},
             "size_mb": round(size, 3), "n_params": n_params,
             "provider": f"torch-{device.type}" if base is not None else provider}
    return logits, runner, e2e, facts


def run(dev: Split, teacher: str, student: str, onnx_dir: str, providers: list[str],
        device: torch.device, threads: int, max_length: int, p: BenchmarkParams,
        baselines: str | None = None) -> Results:
    """Score and time every variant on every provider of ``providers`` (torch on ``device``
    and the ``baselines`` with the CPU provider)."""
    from distillery import baselines as kinds

    tok = loading.load_tokenizer(student)
    t_tok = loading.load_tokenizer(teacher)  # a causal-LM teacher's wraps texts in its prompt
    n_feeds = max(p.repeats, p.batch_size)
    singles, batch = inputs(dev, tok, max_length, n_feeds, p.batch_size)
    teacher_feeds = inputs(dev, t_tok, max_length, n_feeds, p.batch_size)
    raw = (texts(dev, n_feeds), None)  # end-to-end runners: batch 1 only
    k = min(p.batch_size, len(dev))
    raw_batch = {"texts": dev.texts[:k], "pairs": None if dev.pairs is None else dev.pairs[:k]}
    torch_models = {"teacher": teacher, "student": student}
    res = Results(threads={"torch": torch.get_num_threads()})
    for provider in providers:
        runs, facts = {}, {}
        jobs = [(f"{n}-torch-fp32", n, None, {}) for n in torch_models] \
            if provider == "cpu" else []
        jobs += [(v if provider == "cpu" else f"{v}@{provider}", None, path, meta)
                 for v, path, meta in onnx_files(onnx_dir)]
        for variant, base, path, meta in tqdm(jobs, desc=f"accuracy ({provider})"):
            done = _score(variant, base, path, meta, provider, dev, tok, t_tok, torch_models,
                          device, threads, max_length, p, onnx_dir, res)
            if done is None:
                continue
            res.logits[variant], runs[variant], e2e, facts[variant] = done
            if e2e is not None:
                runs[variant + E2E] = e2e
        for variant, folder in baseline_variants(baselines) if provider == "cpu" else []:
            model = kinds.load(folder)
            res.logits[variant] = model.logits(dev.texts, dev.pairs)
            runs[variant] = baseline_runner(model)
            facts[variant] = {
                **{k: round(v, 6) for k, v in evaluate.scores(res.logits[variant],
                                                               dev.labels).items()},
                "size_mb": round(loading.dir_size_mb(folder), 3), "n_params": model.n_params,
                "provider": model.provider}
        logger.info("timing %d runs on %s in %d interleaved rounds (model only and end to "
                    "end)", len(runs), provider, p.rounds)
        feeds = {v: raw if v.endswith(E2E) else (raw[0], raw_batch) if v.startswith("baseline")
                 else teacher_feeds
                 for v in runs if v.endswith(E2E) or v.startswith(("teacher", "baseline"))}
        timings = bench.measure_interleaved(
            runs, singles, batch, p.warmup, p.repeats, p.throughput_batches, p.rounds,
            feeds=feeds)
        for variant in facts:
            t = timings[variant]
            e2e = t if variant.startswith("baseline") else timings.get(variant + E2E)
            res.rounds[variant] = (e2e or t).round_ms
            res.variants[variant] = {
                **facts[variant],
                "latency_ms_p50": round(t.latency_ms_p50, 4),
                "latency_ms_p95": round(t.latency_ms_p95, 4),
                **({"e2e_latency_ms_p50": round(e2e.latency_ms_p50, 4),
                    "e2e_latency_ms_p95": round(e2e.latency_ms_p95, 4)} if e2e else {}),
                "throughput_per_s": round(t.throughput_per_s, 2),
            }
            logger.info("%s: %s", variant, res.variants[variant])
    return res


def confusion_matrix(logits, labels, n: int):
    """``(C, C)`` counts, rows actual, columns predicted."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), logits.argmax(-1)), 1)
    return m

