"""Compact exports: large float weights stored as float16 or per-row int8 in the ONNX file, computed in float32.

An ensemble of four taggers with 400k words of GloVe is about 60 MB with
float32 weights; the budget is 30. Trained weights tolerate storage rounding
well: float16 moves a weight by at most 2^-11 of itself, per-row int8 by at
most half of `max |row| / 127`. The PyTorch model is rounded first (`round_weights`), so
the export self-check still compares identical weights, and the ONNX file is
then rewritten (`store_weights`) to hold each rounded initializer as codes
plus one `Cast` (and for int8 one `Mul` by the row scales) back to float32.
Those ops have constant inputs only, so ONNX Runtime folds them when the
session loads: inference runs in float32 at the same speed (and the weights
take float32's memory again once loaded; only the file is smaller).

Only trained parameters are rounded. Buffers (the frozen GloVe codes and
their scales) keep exactly the values dev scoring saw during training.
int8 applies to tensors of at least 2 dimensions whose rows (last dimension)
hold at least `MIN_ROW` values in the graph: word vectors and LSTM matrices.
(The exporter stores the output layer transposed, rows of one value per tag,
so it stays float32.) Everything else large enough is float16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from model.quantize import dequantize, quantize

Storage = Literal["float32", "float16", "int8"]
MIN_ELEMENTS = 1024  # smaller tensors are not worth extra nodes
MIN_ROW = 16  # int8 rows shorter than this cost more in scales than they save


def _int8_rows(values: torch.Tensor) -> torch.Tensor:
    """Round each row (last dimension) to a multiple of its own scale max |row| / 127, as `model.quantize` does."""
    codes, scales = quantize(values.reshape(-1, values.shape[-1]), 8)
    return dequantize(codes, scales, 8, values.shape[-1]).reshape(values.shape)


@torch.no_grad()
def round_weights(model: nn.Module, storage: Storage) -> int:
    """Round every large float32 parameter to the values `storage` keeps; returns how many."""
    if storage == "float32":
        return 0
    rounded = 0
    for tensor in model.parameters():  # each shared parameter once
        if tensor.dtype != torch.float32 or tensor.numel() < MIN_ELEMENTS:
            continue
        as_int8 = storage == "int8" and tensor.dim() >= 2 and tensor.shape[-1] >= MIN_ROW
        tensor.copy_(_int8_rows(tensor) if as_int8 else tensor.half().float())
        rounded += 1
    return rounded


def _int8_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes (int8) and row scales (float32) that reproduce `values` exactly, or None.

    `values` were rounded by `_int8_rows`, so each row is code * scale for a
    scale within a few float32 steps of max |row| / 127 (dividing back can
    miss the exact scale by a rounding); try those steps, row by row.
    """
    rows = values.reshape(-1, values.shape[-1])  # (R, D)
    first = np.maximum(np.abs(rows).max(axis=1, keepdims=True), np.float32(1e-8)) / np.float32(127)
    codes = np.zeros(rows.shape, dtype=np.int8)
    scales = np.zeros((rows.shape[0], 1), dtype=np.float32)
    found = np.zeros(rows.shape[0], dtype=bool)
    for step in (0, 1, -1, 2, -2):
        candidate = (first.view(np.int32) + np.int32(step)).view(np.float32)  # `step` float32 steps away
        trial = np.clip(np.rint(rows / candidate), -127, 127)
        exact = ~found & (trial * candidate == rows).all(axis=1)
        codes[exact], scales[exact] = trial[exact].astype(np.int8), candidate[exact]
        found |= exact
    if not found.all():
        return None
    return codes.reshape(values.shape), scales.reshape((*values.shape[:-1], 1))


def store_weights(path: Path, storage: Storage) -> int:
    """Rewrite the ONNX file at `path` with its rounded float32 initializers stored as `storage` keeps them.

    An initializer is converted only if the stored form reproduces it exactly
    (the exporter can join small unrounded tensors, LSTM biases, into a large
    one: those stay float32), so the graph computes exactly what the rounded
    PyTorch model does. Returns how many initializers were converted.
    """
    if storage == "float32":
        return 0
    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    nodes, scales = [], []
    for initializer in graph.initializer:
        if initializer.data_type != onnx.TensorProto.FLOAT or int(np.prod(initializer.dims)) < MIN_ELEMENTS:
            continue
        values, name = numpy_helper.to_array(initializer), initializer.name
        coded = _int8_codes(values) if storage == "int8" and values.ndim >= 2 and values.shape[-1] >= MIN_ROW else None
        if coded is not None:
            initializer.CopyFrom(numpy_helper.from_array(coded[0], f"{name}.int8"))
            scales.append(numpy_helper.from_array(coded[1], f"{name}.scale"))
            nodes.append(onnx.helper.make_node("Cast", [f"{name}.int8"], [f"{name}.float"], to=onnx.TensorProto.FLOAT))
            nodes.append(onnx.helper.make_node("Mul", [f"{name}.float", f"{name}.scale"], [name]))
        elif np.array_equal(values.astype(np.float16).astype(np.float32), values):
            initializer.CopyFrom(numpy_helper.from_array(values.astype(np.float16), f"{name}.float16"))
            nodes.append(onnx.helper.make_node("Cast", [f"{name}.float16"], [name], to=onnx.TensorProto.FLOAT))
    graph.initializer.extend(scales)
    for node in reversed(nodes):
        graph.node.insert(0, node)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(path))
    return len([n for n in nodes if n.op_type == "Cast"])
