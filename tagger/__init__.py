"""Torch-free core shared by training and serving: data, encoding, decoding, metrics."""
