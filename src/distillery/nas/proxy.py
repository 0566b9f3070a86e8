"""The proxy task that scores a genome: a short training run of the student it describes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from distillery.nas.genome import Genome

logger = logging.getLogger(__name__)


@dataclass
class ProxyTask:
    """Fitness of a genome: validation score (``metric``) after a short proxy training run
    (cross-entropy, or distillation from ``kd_logits``), the student initialised from
    ``teacher`` where shapes allow.

    ``fitness = score - params_penalty * encoder_params[M] - latency_penalty * latency[ms]``
    (encoder parameters exclude the embeddings; the latency term makes fitness noisy).
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
    latency_repeats: int = 20
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
        from distillery.data.prepared import encode
        from distillery.distill import losses
        from distillery.measure import bench, evaluate
        from distillery.modeling import families, loading, training

        seed_everything(self.seed)
        student = families.build_student(genome, self.teacher, init=self.init_from_teacher)
        student.to(self.device)
        # The proxy ranks encoder shapes: the word-embedding table stays frozen (teacher
        # init or random), which also removes the costliest optimizer update of a step.
        loading.freeze_word_embeddings(student)
        cfg = training.TrainConfig(
            lr=self.lr, batch_size=self.batch_size, max_length=self.max_length,
            steps=self.steps, seed=self.seed,
        )
        with Timer() as t:
            loss = training.cross_entropy if self.kd_logits is None else \
                losses.kd_loss_fn(self.kd_logits, self.kd_alpha, self.kd_temperature)
            training.train(student, self.train, self.tokenizer, cfg, loss, desc=None)
        acc = evaluate.evaluate(student, self.val, self.tokenizer, self.max_length, self.metric)
        first = self.val.subset(range(min(8, len(self.val))))
        feeds = [
            encode(self.tokenizer, [t], None if first.pairs is None else [first.pairs[i]],
                   self.max_length, padding=False, return_tensors="np")
            for i, t in enumerate(first.texts)
        ]
        latency = bench.torch_latency_ms(student, feeds, warmup=3, repeats=self.latency_repeats)
        n_params = loading.count_params(student)
        n_encoder = families.encoder_params(student)
        fit = acc - self.params_penalty * n_encoder / 1e6 - self.latency_penalty * latency
        info = {"score": acc, "n_params": n_params, "encoder_params": n_encoder,
                "latency_ms": latency,
                "train_s": round(t.seconds, 2)}
        logger.info("genome %s: acc=%.4f params=%.2fM latency=%.2fms", genome, acc,
                    n_params / 1e6, latency)
        return fit, info
