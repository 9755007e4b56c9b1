"""Served models: export folders loaded and verified (`served`), the models folder as seen between loads (`folders`:
each folder's name, sha256s and files, read in threads), and the live repository (`repository`: polling the models
folder, loads, unloads, swaps with a drain). Each served model holds its batcher (`service.inference`).
Shadow versions of a model (a candidate beside the serving version) belong here, beside the swap they end in.
"""
