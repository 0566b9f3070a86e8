"""RoBERTa and XLM-RoBERTa (same modules; position ids start after the padding index, which
the student keeps by copying the teacher's config)."""

from distillery.families.base import Family, register

ROBERTA = register(Family(
    name="roberta",
    model_types=("roberta", "xlm-roberta"),
    layers="roberta.encoder.layer",
    head=("classifier",),
))
