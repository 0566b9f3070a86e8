"""DistilBERT: its config names the genes ``n_layers`` / ``dim`` / ``n_heads`` / ``hidden_dim``
and it has no token type embeddings."""

from distillery.modeling.families.base import Family, Structure, register

DISTILBERT = register(Family(
    name="distilbert",
    model_types=("distilbert",),
    layers="distilbert.transformer.layer",
    head=("pre_classifier", "classifier"),
    gene_attrs={"num_hidden_layers": "n_layers", "hidden_size": "dim",
                "num_attention_heads": "n_heads", "intermediate_size": "hidden_dim"},
    structure=Structure(
        attention="attention",
        qkv=("attention.q_lin", "attention.k_lin", "attention.v_lin"),
        attention_out="attention.out_lin",
        ffn_in="ffn.lin1",
        ffn_out="ffn.lin2",
        heads_attr="n_heads",
        all_head_size_attr=None,
    ),
))
