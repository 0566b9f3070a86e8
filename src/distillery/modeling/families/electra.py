"""ELECTRA discriminators: embeddings of their own width (``embedding_size``), projected to the
hidden size when the two differ."""

from transformers import PretrainedConfig

from distillery.modeling.families.base import BERT_STRUCTURE, Family, register


def _fix(config: PretrainedConfig) -> None:
    # A student narrower than the teacher's embeddings takes a slice of them (no projection).
    config.embedding_size = min(config.embedding_size, config.hidden_size)


ELECTRA = register(Family(
    name="electra",
    model_types=("electra",),
    layers="electra.encoder.layer",
    head=("classifier",),
    structure=BERT_STRUCTURE,
    fix_config=_fix,
))
