"""BERT (and the sentence-transformers MiniLM checkpoints, which are BERT)."""

from distillery.families.base import Family, register

BERT = register(Family(
    name="bert",
    model_types=("bert",),
    layers="bert.encoder.layer",
    head=("classifier",),
))
