"""Loading models of any encoder family, the training loop, LoRA, and family conversion."""
