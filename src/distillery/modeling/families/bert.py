"""BERT (and the sentence-transformers MiniLM checkpoints, which are BERT)."""

from distillery.modeling.families.base import BERT_STRUCTURE, Family, register

BERT = register(Family(
    name="bert",
    model_types=("bert",),
    layers="bert.encoder.layer",
    head=("classifier",),
    structure=BERT_STRUCTURE,
))
