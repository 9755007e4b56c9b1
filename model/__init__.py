"""Training side (PyTorch): vocabularies, network, training loop, export to ONNX."""
