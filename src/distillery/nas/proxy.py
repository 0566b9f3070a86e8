"""The proxy task that scores a genome: a short training run of the student it describes."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from distillery.nas.genome import Genome

logger = logging.getLogger(__name__)


@dataclass
class ProxyTask:
    """Fitness of a genome: validation score (``metric``) after a short proxy training run
    (cross-entropy, or distillation from ``kd_logits``), the student initialised from
    ``teacher`` where shapes allow, and its speed as ``latency`` measures it (the int8 ONNX
    file end to end beside the teacher's: :class:`distillery.nas.latency.ExportLatency`).

    ``fitness = score - params_penalty * encoder_params[M] - latency_penalty * latency[ms]``
    (encoder parameters exclude the embeddings; the latency term makes fitness noisy), and a
    candidate slower than the budget (``speedup < min_speedup``) gets
    ``score - min_speedup / speedup``: below every candidate within it (fitness <= 1), and
    the nearer the budget the higher.
    """

    teacher: Any
    tokenizer: Any
    train: Any
    val: Any
    max_length: int
    steps: int
    batch_size: int
    lr: float
    init_from_teacher: bool = True
    params_penalty: float = 0.0
    latency_penalty: float = 0.0
    latency: Any = None
    """``model -> {"latency_ms", "speedup", ...}``; None: not timed (``latency_ms`` and
    ``speedup`` are NaN; ``min_speedup`` must then be None)."""
    min_speedup: float | None = None
    metric: str = "accuracy"
    seed: int = 0
    kd_logits: Any = None
    """Teacher logits ``(len(train), C)``: train by distillation (as the final student is)
    instead of plain cross-entropy."""
    kd_alpha: float = 0.5
    kd_temperature: float = 2.0
    device: str = "cpu"
    """Where candidates train and are timed (``teacher.device`` resolved)."""

    def __call__(self, genome: Genome) -> tuple[float, dict[str, Any]]:
        from distillery.core.io import Timer, seed_everything
        from distillery.distill import losses
        from distillery.distill import student as student_mod
        from distillery.measure import evaluate
        from distillery.modeling import families, loading, training

        seed_everything(self.seed)
        # as the final student starts: the teacher's own embedding table frozen, a sliced one
        # trained (a frozen slice would handicap every narrower candidate)
        student = student_mod.build(genome, self.teacher, self.init_from_teacher)
        student.to(self.device)
        cfg = training.TrainConfig(
            lr=self.lr, batch_size=self.batch_size, max_length=self.max_length,
            steps=self.steps, seed=self.seed,
        )
        with Timer() as t:
            loss = training.cross_entropy if self.kd_logits is None else \
                losses.kd_loss_fn(self.kd_logits, self.kd_alpha, self.kd_temperature)
            training.train(student, self.train, self.tokenizer, cfg, loss, desc=None)
        acc = evaluate.evaluate(student, self.val, self.tokenizer, self.max_length, self.metric)
        speed = {"latency_ms": math.nan, "speedup": math.nan}
        if self.latency is not None:
            speed = {k: round(v, 4) for k, v in self.latency(student.cpu().eval()).items()}
        elif self.min_speedup is not None:
            raise ValueError("min_speedup needs a latency measurement")
        n_params = loading.count_params(student)
        n_encoder = families.encoder_params(student)
        fit = acc - self.params_penalty * n_encoder / 1e6
        if self.latency_penalty:
            fit -= self.latency_penalty * speed["latency_ms"]
        if self.min_speedup is not None and speed["speedup"] < self.min_speedup:
            fit = acc - self.min_speedup / speed["speedup"]
        info = {"score": acc, "n_params": n_params, "encoder_params": n_encoder, **speed,
                "train_s": round(t.seconds, 2)}
        logger.info("genome %s: acc=%.4f params=%.2fM latency=%.3fms speed-up=%.2fx", genome,
                    acc, n_params / 1e6, speed["latency_ms"], speed["speedup"])
        return fit, info
