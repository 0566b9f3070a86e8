"""DistilBERT: its config names the genes ``n_layers`` / ``dim`` / ``n_heads`` / ``hidden_dim``
and it has no token type embeddings."""

from distillery.families.base import Family, register

DISTILBERT = register(Family(
    name="distilbert",
    model_types=("distilbert",),
    layers="distilbert.transformer.layer",
    head=("pre_classifier", "classifier"),
    gene_attrs={"num_hidden_layers": "n_layers", "hidden_size": "dim",
                "num_attention_heads": "n_heads", "intermediate_size": "hidden_dim"},
))
