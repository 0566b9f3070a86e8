"""The teacher: its fine-tuning recipe searched (stage ``hpo``), encoders and causal LMs."""
