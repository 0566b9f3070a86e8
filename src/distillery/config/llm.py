"""The ``llm:`` section of ``params.yaml`` (one typed, validated dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field

from distillery.config.base import in_range, positive

DEFAULT_OPEN_PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Explain in one sentence what a neural network is.",
    "Give me three tips for a job interview.",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 7?",
]


@dataclass
class LlmParams:
    """Stage ``llm``: generation variants of a causal-LM teacher (skipped for an encoder)."""

    variants: list[str] = field(default_factory=lambda: ["fp32", "int8", "int4"])
    """Weight recipes of the specialised model (``distillery.llm.recipes``): ``fp32``,
    ``int8`` (weight-only), ``int4`` (round to nearest, embedding too), ``int4_hqq``."""
    base_variants: list[str] = field(default_factory=lambda: ["fp32"])
    """Weight recipes of the base (generic) model."""
    block_size: int = 32
    """Weights per quantisation block along the input dimension (16, 32, 64, 128, 256)."""
    label_prompts: int = 20
    """Eval texts, in the teacher's prompt, answered by every variant (the answers table)."""
    open_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_OPEN_PROMPTS))
    """Free prompts answered by every variant, in the model's chat template."""
    gen_tokens: int = 32
    """Greedy tokens per prompt (compared token by token with torch fp32)."""
    eval_examples: int | None = None
    """Eval texts classified by every variant through the verbalizers; null = all."""
    bench_prompt_tokens: int = 64
    """Prompt length of the generation benchmark."""
    bench_new_tokens: int = 64
    """Tokens generated per benchmark round (no early stop)."""
    bench_rounds: int = 5
    """Interleaved rounds: every variant once per round, the median kept."""
    threads: int = 0
    """ONNX Runtime intra-op threads (0 = one per core); torch uses its default."""
    max_accuracy_drop: float = 0.05
    """A variant's eval accuracy may be at most this below torch fp32's (else the stage fails)."""
    min_agreement: float = 0.8
    """Fraction of eval predictions equal to torch fp32's a variant must reach."""
    max_ppl_ratio: float = 2.5
    """A variant's reference-text word perplexity / torch fp32's must stay at most this."""
    min_greedy_match: float = 0.1
    """Fraction of prompts whose ``gen_tokens`` greedy tokens equal torch fp32's."""

    def check(self) -> list[str]:
        from distillery.llm.recipes import RECIPES

        out = positive(self, "gen_tokens", "bench_prompt_tokens", "bench_new_tokens",
                       "bench_rounds")
        for key in ("variants", "base_variants"):
            values = getattr(self, key)
            unknown = [v for v in values if v not in RECIPES]
            if unknown or len(set(values)) != len(values):
                out.append(f"{key}: got {values!r}; expected distinct names among "
                           f"{', '.join(RECIPES)}")
        if self.block_size not in (16, 32, 64, 128, 256):
            out.append(f"block_size: got {self.block_size!r}, expected 16, 32, 64, 128 or 256")
        if self.label_prompts < 0:
            out.append(f"label_prompts: got {self.label_prompts!r}, expected >= 0")
        if self.label_prompts == 0 and not self.open_prompts:
            out.append("label_prompts: 0 and open_prompts empty: no prompt to answer")
        blank = [i for i, p in enumerate(self.open_prompts) if not p.strip()]
        if blank:
            out.append(f"open_prompts: got {self.open_prompts[blank[0]]!r} at index {blank[0]}, "
                       "expected a non-empty prompt")
        if self.eval_examples is not None and self.eval_examples < 1:
            out.append(f"eval_examples: got {self.eval_examples!r}, expected >= 1 or null")
        if self.threads < 0:
            out.append(f"threads: got {self.threads!r}, expected >= 0")
        for name in ("max_accuracy_drop", "min_agreement", "min_greedy_match"):
            out += in_range(name, getattr(self, name), 0.0, 1.0)
        out += in_range("max_ppl_ratio", self.max_ppl_ratio, 1.0, 100.0)
        return out
