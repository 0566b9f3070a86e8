"""RoBERTa and XLM-RoBERTa (same modules; position ids start after the padding index, which
the student keeps by copying the teacher's config)."""

from distillery.modeling.families.base import BERT_STRUCTURE, Family, register

ROBERTA = register(Family(
    name="roberta",
    model_types=("roberta", "xlm-roberta"),
    layers="roberta.encoder.layer",
    head=("classifier",),
    structure=BERT_STRUCTURE,
))
