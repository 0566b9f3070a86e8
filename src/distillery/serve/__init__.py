"""The local demo and the deployable Hugging Face Space (stage ``space``)."""
