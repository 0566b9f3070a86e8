"""DeBERTa-v2 / v3: disentangled attention with relative positions, and a pooler sized by
``pooler_hidden_size``."""

from transformers import PretrainedConfig

from distillery.modeling.families.base import Family, register


def _fix(config: PretrainedConfig) -> None:
    config.pooler_hidden_size = config.hidden_size
    if hasattr(config, "attention_head_size"):  # derived from hidden / heads when absent
        del config.attention_head_size


DEBERTA_V2 = register(Family(
    name="deberta_v2",
    model_types=("deberta-v2",),
    layers="deberta.encoder.layer",
    head=("pooler", "classifier"),
    fix_config=_fix,
))
