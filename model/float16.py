"""Half-size exports: large float weights stored as float16 in the ONNX file, computed in float32.

Rounding a trained weight to float16 moves it by at most 2^-11 of itself,
which costs an LSTM tagger nothing measurable, and halves the bytes of
everything but the (already quantized) frozen GloVe rows: what lets an
ensemble fit the export size budget. The PyTorch model is rounded the same
way first (`round_weights`), so the export self-check still compares
identical weights; each stored initializer gets one `Cast` to float32,
which ONNX Runtime folds into a constant when the session loads, so
inference runs in float32 at the same speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

MIN_ELEMENTS = 1024  # smaller tensors (biases, CRF-free heads) are not worth a Cast node


@torch.no_grad()
def round_weights(model: nn.Module, min_elements: int = MIN_ELEMENTS) -> int:
    """Round every float32 parameter and buffer of at least `min_elements` to float16 values; returns how many."""
    rounded = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.dtype == torch.float32 and tensor.numel() >= min_elements:
            tensor.copy_(tensor.half().float())
            rounded += 1
    return rounded


def store_float16(path: Path, min_elements: int = MIN_ELEMENTS) -> int:
    """Rewrite the ONNX file at `path` with its large float16-exact float32 initializers stored as float16.

    Only initializers `round_weights` made exact are converted, so the graph computes exactly what the
    rounded PyTorch model does. Returns how many were converted.
    """
    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    casts = []
    for initializer in graph.initializer:
        if initializer.data_type != onnx.TensorProto.FLOAT or int(np.prod(initializer.dims)) < min_elements:
            continue
        values = numpy_helper.to_array(initializer)
        half = values.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), values):
            continue  # not rounded (the exporter can join small tensors: LSTM biases), so storing it must not round it
        name = initializer.name
        initializer.CopyFrom(numpy_helper.from_array(half, f"{name}.float16"))
        casts.append(onnx.helper.make_node("Cast", [f"{name}.float16"], [name], to=onnx.TensorProto.FLOAT))
    for cast in reversed(casts):
        graph.node.insert(0, cast)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(path))
    return len(casts)
