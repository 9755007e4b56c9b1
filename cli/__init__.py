"""The `tagger` command: the roof over the three parts (core, training, serving).

It is the one package that imports all of them: training-side commands
import torch lazily, so `tagger evaluate`, `predict` and `serve` on export
folders run in a serving install without torch. Nothing imports it back.
"""
