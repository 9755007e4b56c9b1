"""Served models: export folders loaded and verified (`served`), and the live repository (`repository`: polling the
models folder, loads, unloads, swaps with a drain). Each served model holds its batcher (`service.inference`).
Shadow versions of a model (a candidate beside the serving version) belong here, beside the swap they end in.
"""
