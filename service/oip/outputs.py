"""Tensors of the Open Inference Protocol, the answer side: the pipeline's typed results to output tensors.

Outputs are padded to the longest sentence T: tags "" and scores 0.0 after a sentence's end, offsets [-1, -1],
top-k tags "" and their scores 0.0. With the binary tensor extension each tensor's bytes follow the JSON object.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.api.answers import spans_json
from service.oip.schemas import InferenceRequest, RequestParameters
from service.oip.tensors import OUTPUTS, PACKING, invalid
from service.results import SentenceResult


@dataclass(frozen=True)
class Asked:
    """An output the request asked for, and whether it goes back in binary."""

    name: str
    binary: bool


def asked_outputs(request: InferenceRequest, input_name: str, spans: bool, model: str) -> list[Asked]:
    """The outputs to answer: those in `outputs`, or by default tags, offsets (text), spans (span models) and
    what `parameters` add (scores, top_k)."""
    parameters = request.parameters or RequestParameters()
    if request.outputs is None:
        names = ["tags", *(["scores"] if parameters.scores else [])]
        names += ["top_k_tags", "top_k_scores"] if parameters.top_k else []
        names += (["offsets"] if input_name == "text" else []) + (["spans"] if spans else [])
        return [Asked(name, parameters.binary_data_output) for name in names]
    known = [name for name in OUTPUTS if spans or name != "spans"]
    asked: list[Asked] = []
    for i, output in enumerate(request.outputs):
        field = f"outputs[{i}].name"
        if output.name not in known:
            raise invalid(f"{field}: unknown output {output.name!r}; {model} has {', '.join(known)}", field)
        if output.name in {a.name for a in asked}:
            raise invalid(f"{field}: {output.name} is asked for twice", field)
        if output.name == "offsets" and input_name != "text":
            raise invalid(f"{field}: offsets point into the text input; tokens have none", field)
        if output.name.startswith("top_k") and not parameters.top_k:
            raise invalid(f"{field}: {output.name} needs parameters.top_k (k, at least 1)", field)
        binary = output.parameters.binary_data if output.parameters is not None else None
        asked.append(Asked(output.name, parameters.binary_data_output if binary is None else binary))
    return asked


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]  # row-major, flat

    def packed(self) -> bytes:
        """The binary tensor extension's form: little-endian, BYTES as length-prefixed UTF-8."""
        if self.datatype == "BYTES":
            encoded = [value.encode("utf-8") for value in self.data]
            return b"".join(struct.pack("<I", len(b)) + b for b in encoded)
        return np.asarray(self.data, dtype=PACKING[self.datatype]).tobytes()


def output_tensors(results: Sequence[SentenceResult], asked: list[Asked], k: int) -> list[Tensor]:
    """The asked outputs from the pipeline's typed results, padded to the longest sentence."""
    n, t = len(results), max((len(r.tags) for r in results), default=0)
    tensors = []
    for name in (a.name for a in asked):
        datatype, rank = OUTPUTS[name][0], len(OUTPUTS[name][1])
        if name == "spans":
            data = [
                json.dumps(spans_json(r), ensure_ascii=False, allow_nan=False, separators=(",", ":")) for r in results
            ]
            tensors.append(Tensor(name, datatype, [n], data))
            continue
        width = {"offsets": 2, "top_k_tags": k, "top_k_scores": k}.get(name, 1)
        pad: Any = {"BYTES": "", "FP32": 0.0, "INT32": -1}[datatype]
        data = []
        for r in results:
            data += _cells(name, r)
            data += [pad] * ((t - len(r.tags)) * width)
        tensors.append(Tensor(name, datatype, [n, t, width][:rank], data))
    return tensors


def _cells(name: str, result: SentenceResult) -> list[Any]:
    """One sentence's values of an output, flat."""
    if name == "tags":
        return list(result.tags)
    if name == "scores":
        assert result.scores is not None
        return list(result.scores)
    if name == "offsets":
        assert result.offsets is not None
        return [i for pair in result.offsets for i in pair]
    assert result.top_k is not None
    column = 0 if name == "top_k_tags" else 1
    return [best[column] for token in result.top_k for best in token]


def answer_body(head: dict[str, Any], tensors: list[Tensor], asked: list[Asked]) -> tuple[bytes, int | None]:
    """(body, length of its JSON object when binary outputs follow it, else None)."""
    outputs, blobs = [], []
    for tensor, how in zip(tensors, asked, strict=True):
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if how.binary:
            blobs.append(tensor.packed())
            entry["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            entry["data"] = tensor.data
        outputs.append(entry)
    header = json.dumps(
        {**head, "outputs": outputs}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    return (header + b"".join(blobs), len(header)) if blobs else (header, None)
