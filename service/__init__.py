"""Serving side (no torch): ONNX Runtime sessions behind a FastAPI app."""
