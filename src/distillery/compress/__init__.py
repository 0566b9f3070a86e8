"""Pruning (structured and unstructured) and vocabulary pruning (stage ``compress``)."""
