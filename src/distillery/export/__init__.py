"""ONNX export and the quantisation recipes (stage ``export``)."""
