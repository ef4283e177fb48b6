"""Converters from the packages' native formats to ONNX, and the graph helpers they share."""
