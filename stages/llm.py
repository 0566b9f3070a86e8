"""Stage ``llm``: the causal-LM teacher itself, compressed and served (skipped, with a note in
its outputs, for an encoder teacher).

For the specialised model (``--teacher``, the ``hpo`` stage's classifier form, rebuilt as a
causal LM) and the base model (``teacher.model``): export one ONNX decoder with a KV cache,
write one file per weight recipe (``llm.variants``, ``llm.base_variants``), measure torch fp32
(classification through the verbalizers on the eval split, greedy answers to the prompt set,
reference-text perplexity), then every variant the same way and through lm-eval; fail if a
variant misses a tolerance of ``llm.*``. Then the generation benchmark (interleaved rounds) and
the generic vs specialised answers.

Deps: ``--teacher``, ``--data``. Params: ``teacher.*``, ``llm.*``.
Outs: ``--out`` (the ``.onnx`` variants and the tokenizer), ``--report`` (Markdown: figures and
answers side by side). Metrics: ``--metrics``. Plots: ``--plots`` (one row per variant).
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np

from distillery.config.base import load_section
from distillery.config.llm import LlmParams
from distillery.config.teacher import TeacherParams
from distillery.core.io import UserError, atomic_path, run_main, stage_args
from distillery.data.prepared import load_prepared
from distillery.llm import answers, bench, models, report, study, validate
from distillery.llm.export import eos_ids
from distillery.llm.runtime import OrtLM, TorchLM
from distillery.lmeval import evaluation
from distillery.lmeval.perplexity import reference_documents
from distillery.teachers.causal.loading import teacher_kind
from distillery.teachers.causal.prompt import encode_requests
from distillery.teachers.causal.scoring import score_requests

logger = logging.getLogger("stages.llm")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["teacher", "data", "out", "metrics", "plots", "report"], argv)
    tp = load_section(args.params, "teacher", TeacherParams)
    p = load_section(args.params, "llm", LlmParams)
    if teacher_kind(tp.model) != "causal":
        return report.skipped(args, f"teacher.model {tp.model!r} is an encoder")
    spec, tok, prompt = models.load_specialised(tp.model, args.teacher, tp.revision)
    base, _ = models.load_base(tp.model, tp.revision)
    splits, _ = load_prepared(args.data)
    split = splits["eval"]
    n = min(len(split), p.eval_examples or len(split))
    split = split.subset(range(n))
    with tempfile.TemporaryDirectory(prefix="distillery-llm-") as tmp, \
            atomic_path(args.out) as out:
        out.mkdir()
        tok.save_pretrained(out / "tokenizer")
        x = study.Inputs(tok, encode_requests(tok, prompt, split.texts, split.pairs),
                         np.array(split.labels), answers.prompt_set(
                             prompt, split.texts, split.labels, p.open_prompts, tok,
                             p.label_prompts),
                         reference_documents(), evaluation.write_tasks(tmp, prompt, args.data),
                         tp.max_length)
        rows, gens, fails, runtimes = {}, {}, [], {}
        for name, model, recipes in (("specialised", spec, p.variants),
                                     ("base", base, p.base_variants)):
            torch_lm = TorchLM(model, eos_ids(model, tok), name=f"{name}-torch-fp32")
            scores = score_requests(model, x.requests, tp.max_length,
                                    desc=f"{name} torch classify")
            ref = study.measure(torch_lm, x, p.gen_tokens, scores)
            rows[torch_lm.name] = study.compare(ref, ref, x, p.gen_tokens) | {
                "size_mb": 4 * sum(t.numel() for t in model.parameters()) / 1e6}
            gens[torch_lm.name] = ref.generations
            if name == "specialised":
                runtimes[torch_lm.name] = torch_lm
            files = study.build_variants(model, tok, out, name, recipes, p.block_size)
            for vname, path in files.items():
                lm = OrtLM(path, p.threads, name=vname)
                m = study.measure(lm, x, p.gen_tokens)
                rows[vname] = study.compare(m, ref, x, p.gen_tokens) | study.lm_eval_check(
                    lm, x, m, n) | {"size_mb": bench.size_mb(path)}
                gens[vname] = m.generations
                logger.info("%s: %s", vname, ", ".join(f"{k} {v:.4g}" for k, v in
                                                       rows[vname].items()))
                fails += validate.problems(vname, rows[vname], p)
                if name == "specialised":
                    runtimes[vname] = lm
        if fails:
            raise UserError("generation variants past their tolerances: " + "; ".join(fails))
        report.benchmark(rows, runtimes, tok, x, p, args.teacher, tp.model, out)
        texts = {k: [tok.decode(g, skip_special_tokens=True) for g in v] for k, v in gens.items()}
        for k in rows:
            rows[k] |= answers.summary(texts[k], x.items, prompt)
    report.write(args, rows, texts, x.items, prompt, p, tp.model)


if __name__ == "__main__":
    run_main(main)
