"""Tensors of the Open Inference Protocol, the request side: a request body to its input strings.

JSON tensor data is row-major, flat or nested. The binary tensor extension (Triton's `binary_tensor_data`,
what tritonclient sends by default) puts each tensor's bytes after the JSON object, whose length the
`Inference-Header-Content-Length` header gives; BYTES elements are a 4-byte little-endian length and the
bytes: ["hi", ""] -> b"\\x02\\x00\\x00\\x00hi\\x00\\x00\\x00\\x00". Outputs are padded to the longest sentence
T: tags "" and scores 0.0 after a sentence's end, offsets [-1, -1], top-k tags "" and their scores 0.0.

Every refusal here is a 400 naming the field (`inputs[0].shape`); the limits /v1 applies are 422s raised by
`service.pipeline.prepare`, named in these terms (`service.oip.routes.TENSOR_FIELDS`). The answer side, the
pipeline's typed results to output tensors, is `service.oip.outputs`.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from pydantic import ValidationError

from service.errors import ApiError, field_path
from service.oip.schemas import (
    InferenceRequest,
    InputParameters,
    OutputParameters,
    RequestInput,
    RequestOutput,
    RequestParameters,
)
from service.settings import Settings

HEADER_LENGTH = "inference-header-content-length"
INPUTS = {"text": "[N]", "tokens": "[N, T]"}  # name -> shape; both BYTES
# name -> (datatype, shape); spans only for span models, offsets only for the text input
OUTPUTS: dict[str, tuple[str, list[int]]] = {
    "tags": ("BYTES", [-1, -1]),
    "scores": ("FP32", [-1, -1]),
    "top_k_tags": ("BYTES", [-1, -1, -1]),
    "top_k_scores": ("FP32", [-1, -1, -1]),
    "offsets": ("INT32", [-1, -1, 2]),
    "spans": ("BYTES", [-1]),
}
PACKING = {"FP32": "<f4", "INT32": "<i4"}
# the models of the objects a field path can end in: (named parts of the path) -> its fields
FIELDS: dict[tuple[str, ...], type[Any]] = {
    (): InferenceRequest,
    ("parameters",): RequestParameters,
    ("inputs",): RequestInput,
    ("inputs", "parameters"): InputParameters,
    ("outputs",): RequestOutput,
    ("outputs", "parameters"): OutputParameters,
}


def invalid(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, field)


def read_body(body: bytes, header_length: str | None) -> tuple[InferenceRequest, bytes | None]:
    """The request's JSON object, and the binary data after it (None without the binary extension's header)."""
    tail: bytes | None = None
    if header_length is not None:
        if not (
            header_length.isascii()
            and header_length.isdigit()
            and len(header_length) < 20
            and 0 < int(header_length) <= len(body)
        ):
            raise invalid(
                f"Inference-Header-Content-Length is {header_length[:40]!r}; it must be the length in bytes of the "
                f"JSON object at the start of the body, which has {len(body)} bytes"
            )
        body, tail = body[: int(header_length)], body[int(header_length) :]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, "invalid_utf8", f"the JSON object is not valid UTF-8 (byte offset {err.start})") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:
        cause = str(err) if isinstance(err, ValueError) else "nested too deeply"
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {cause}") from None
    try:
        request = InferenceRequest.model_validate(document)
    except ValidationError as err:
        raise _reworded(err) from None
    if request.id is not None and not request.id.isascii():
        try:
            request.id.encode("utf-8")  # echoed in the answer: a lone surrogate could not be
        except UnicodeEncodeError as err:
            message = f"id holds a lone UTF-16 surrogate at character {err.start}"
            raise ApiError(400, "invalid_request", message, "id") from None
    return request, tail


def _refuse_constant(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


def _reworded(err: ValidationError) -> ApiError:
    """Pydantic's first complaint, naming the field: `inputs[0].shape[1]: Input should be a valid integer`."""
    first = err.errors()[0]
    loc = tuple(first.get("loc", ()))
    field = field_path(loc)
    message = f"{field}: {first.get('msg', 'invalid')}"
    if first.get("type") == "extra_forbidden":
        model = FIELDS.get(tuple(p for p in loc[:-1] if isinstance(p, str)), InferenceRequest)
        message = f"{field}: unknown field; allowed: {', '.join(model.model_fields)}"
    if err.error_count() > 1:
        message += f" (and {err.error_count() - 1} more problems)"
    return invalid(message, field)


def input_strings(request: InferenceRequest, tail: bytes | None, settings: Settings) -> tuple[RequestInput, list[str]]:
    """The request's one input and its elements, row-major, checked against its shape and the size limits."""
    if len(request.inputs) != 1:
        raise invalid(f"inputs: give one input, text (BYTES [N]) or tokens (BYTES [N, T]); got {len(request.inputs)}")
    tensor, field = request.inputs[0], "inputs[0]"
    if tensor.name not in INPUTS:
        raise invalid(f"{field}.name: unknown input {tensor.name!r}; inputs: text (BYTES [N]) or tokens (BYTES [N, T])")
    if tensor.datatype != "BYTES":
        raise invalid(f"{field}.datatype: {tensor.name} is BYTES, got {tensor.datatype!r}")
    shape = tensor.shape
    if len(shape) != len(INPUTS[tensor.name].split(",")):
        raise invalid(f"{field}.shape: {tensor.name} has shape {INPUTS[tensor.name]}, got {shape}")
    if shape[0] == 0:
        raise invalid(f"{field}.shape: N is 0; send at least one {'text' if tensor.name == 'text' else 'sentence'}")
    _check_size(tensor, settings)
    size = tensor.parameters.binary_data_size if tensor.parameters is not None else None
    if size is None:
        if tensor.data is None:
            raise invalid(f"{field}.data: missing (or, binary tensor extension: parameters.binary_data_size)")
        if tail:
            raise invalid(f"{len(tail)} bytes follow the JSON object, and no input has parameters.binary_data_size")
        values = _from_json(tensor.data, shape, f"{field}.data")
    else:
        if tensor.data is not None:
            raise invalid(f"{field}: give data or parameters.binary_data_size, not both")
        if tail is None or size != len(tail):
            after = "no Inference-Header-Content-Length header" if tail is None else f"{len(tail)} bytes after the JSON"
            raise invalid(f"{field}.parameters.binary_data_size is {size}, but the request has {after}")
        values = _from_binary(tail, math.prod(shape), field)
    if len(values) != math.prod(shape):
        where = f"{field}.data" if size is None else f"{field} (binary)"
        raise invalid(f"{where}: {len(values)} elements; shape {shape} holds {math.prod(shape)}")
    return tensor, values


def _check_size(tensor: RequestInput, settings: Settings) -> None:
    """The limits a shape alone breaks (422, as /v1's), before any element is read."""
    name, shape = tensor.name, tensor.shape
    if shape[0] > settings.max_sentences:
        message = f"{name} has {shape[0]} items; the limit is {settings.max_sentences} (TAGGER_MAX_SENTENCES)"
        raise ApiError(422, "too_many_items", message, "inputs[0].shape")
    if name == "tokens" and shape[1] > settings.max_tokens:
        message = f"{name} has rows of {shape[1]} tokens; the limit is {settings.max_tokens} (TAGGER_MAX_TOKENS)"
        raise ApiError(422, "too_many_tokens", message, "inputs[0].shape")


def _from_json(data: list[Any], shape: list[int], field: str) -> list[str]:
    """Flat ([N * T] strings) or, for [N, T], nested ([N] lists of [T]) row-major data, as a flat list."""
    if len(shape) == 2 and data and isinstance(data[0], list):
        if len(data) != shape[0]:
            raise invalid(f"{field}: {len(data)} rows; shape {shape} has {shape[0]}")
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != shape[1]:
                got = f"{len(row)} elements" if isinstance(row, list) else _kind(row)
                raise invalid(f"{field}[{i}]: a row of {shape[1]} strings, as shape {shape} says; got {got}")
            _strings(row, f"{field}[{i}]")
        return [value for row in data for value in row]
    _strings(data, field)
    return data


def _strings(values: list[Any], field: str) -> None:
    for j, value in enumerate(values):
        if not isinstance(value, str):
            raise invalid(f"{field}[{j}]: BYTES elements are strings, got {_kind(value)}")


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), "null"
    )


def _from_binary(raw: bytes, count: int, field: str) -> list[str]:
    """BYTES elements: each a 4-byte little-endian length and that many UTF-8 bytes."""
    values: list[str] = []
    at = 0
    while at < len(raw) and len(values) <= count:  # one element more than the shape holds is enough to refuse
        size = struct.unpack_from("<I", raw, at)[0] if at + 4 <= len(raw) else len(raw)
        start, at = at + 4, at + 4 + size
        if at > len(raw):
            raise invalid(f"{field}: its binary data ends inside element {len(values)} (a 4-byte length, then bytes)")
        try:
            values.append(raw[start:at].decode("utf-8"))
        except UnicodeDecodeError as err:
            raise invalid(f"{field}: element {len(values)} is not valid UTF-8 (byte offset {err.start})") from None
    return values


def sentences(values: list[str], shape: list[int]) -> list[list[str]]:
    """[N, T] tokens, "" after each sentence's end, to N token lists."""
    rows = [values[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
    out = []
    for i, row in enumerate(rows):
        end = len(row)
        while end and row[end - 1] == "":
            end -= 1
        if "" in row[:end]:
            j = row.index("")
            raise invalid(f'inputs[0].data: tokens[{i}][{j}] is "" (padding), but a token follows it', "inputs[0]")
        out.append(row[:end])
    return out
