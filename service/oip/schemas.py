"""Bodies of the Open Inference Protocol (KServe v2) REST API, as this server reads and writes them.

The protocol's JSON objects (kserve/open-inference-protocol, `inference_rest.md`), made strict where the
protocol leaves them open: `parameters` are the few this server acts on, and an unknown one is a 400
naming it rather than silently ignored (as /v1 refuses unknown fields). The models here parse requests;
`request_schema` documents them in /openapi.json with the limits the server runs with, tighter than the
models (which types and names each input takes) because the route checks those by hand, with messages
that name the tensor.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from service.api.schemas import NOT_BLANK
from service.settings import Settings

MAX_DIM = 2**64 - 1  # "each dimension must be an integer representable as an unsigned 64-bit integer"


def _whole(value: Any) -> Any:
    """JSON Schema's integers include 3.0 (a whole float is an integer); strings and booleans are not numbers."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_DIM:
        return int(value)
    return value


def _not_null(value: Any) -> Any:
    """An optional field is left out, never null (as the documented schema has it)."""
    if value is None:
        raise ValueError("null is not allowed here; leave the field out")
    return value


Whole = Annotated[StrictInt, BeforeValidator(_whole)]
NotNull = BeforeValidator(_not_null)
Dimension = Annotated[Whole, Field(ge=0, le=MAX_DIM)]


class InputParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    binary_data_size: Annotated[Annotated[Whole, Field(ge=0, le=MAX_DIM)] | None, NotNull] = Field(
        None, description="binary tensor extension: the tensor's bytes follow the JSON object in the body"
    )


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr
    shape: list[Dimension]
    datatype: StrictStr
    parameters: Annotated[InputParameters | None, NotNull] = None
    data: Annotated[list[Any] | None, NotNull] = (
        None  # strings, flat or nested row-major: checked against the shape by the route
    )


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    binary_data: Annotated[StrictBool | None, NotNull] = Field(
        None, description="binary tensor extension: answer this output in binary"
    )


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr
    parameters: Annotated[OutputParameters | None, NotNull] = None


class RequestParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scores: StrictBool = Field(default=False, description="add the `scores` output when `outputs` is not given")
    top_k: Annotated[Whole, Field(ge=0)] = Field(
        default=0, description="k: the outputs top_k_tags and top_k_scores hold the k most probable tags per token"
    )
    binary_data_output: StrictBool = Field(
        default=False, description="binary tensor extension: every output in binary unless it says otherwise"
    )


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[StrictStr | None, NotNull] = None
    parameters: Annotated[RequestParameters | None, NotNull] = None
    inputs: list[RequestInput]
    outputs: Annotated[list[RequestOutput] | None, NotNull] = None


# Answers (documentation only: the routes serialize their answers themselves)


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for a dimension of any size")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata] = Field(description="give exactly one of them")
    outputs: list[TensorMetadata]


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None
    data: list[str | float | int] = Field(description="row-major, flat")


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = Field(None, description="the request's id, when it gave one")
    outputs: list[ResponseOutput]


class OipError(BaseModel):
    """The protocol's error object: one message naming the field and the limit."""

    error: str


def request_schema(settings: Settings, outputs: list[str]) -> dict[str, Any]:
    """The inference request (its JSON form) as JSON Schema, with this server's inputs, outputs and limits."""
    token = {"type": "string", "maxLength": settings.max_token_chars, "pattern": f"^$|{NOT_BLANK}"}
    sentences = {"type": "integer", "minimum": 1, "maximum": settings.max_sentences}
    text_input = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"const": "text"},
            "datatype": {"const": "BYTES"},
            "shape": {"type": "array", "items": sentences, "minItems": 1, "maxItems": 1},
            "data": {
                "type": "array",
                "minItems": 1,
                "maxItems": settings.max_sentences,
                "items": {"type": "string", "maxLength": settings.max_text_chars},
            },
            "parameters": {"type": "object", "additionalProperties": False, "properties": {}},
        },
    }
    tokens_input = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"const": "tokens"},
            "datatype": {"const": "BYTES"},
            "shape": {
                "type": "array",
                "prefixItems": [sentences, {"type": "integer", "minimum": 1, "maximum": settings.max_tokens}],
                "items": False,
                "minItems": 2,
                "maxItems": 2,
            },
            "data": {
                "oneOf": [
                    {"type": "array", "items": token},  # flat, row-major
                    {"type": "array", "items": {"type": "array", "items": token, "maxItems": settings.max_tokens}},
                ],
                "minItems": 1,
            },
            "parameters": {"type": "object", "additionalProperties": False, "properties": {}},
        },
    }
    output = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"enum": outputs},
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"binary_data": {"type": "boolean"}},
            },
        },
    }
    parameters = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "scores": {"type": "boolean"},
            "top_k": {"type": "integer", "minimum": 0, "maximum": settings.max_top_k},
            "binary_data_output": {"type": "boolean"},
        },
    }
    return {
        "title": "InferenceRequest",
        "type": "object",
        "additionalProperties": False,
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": parameters,
            "inputs": {"type": "array", "items": {"oneOf": [text_input, tokens_input]}, "minItems": 1, "maxItems": 1},
            "outputs": {"type": "array", "items": output},
        },
        "description": "One input, `text` or `tokens`. Beyond what the schema states: a tensor's data holds as "
        'many elements as its shape says, and in `tokens` "" comes only after a sentence\'s last token; at most '
        f"{settings.max_request_tokens} tokens in all (TAGGER_MAX_REQUEST_TOKENS; a text counts the tokens the "
        f"tokenizer finds, at most {settings.max_tokens} a text); the padded answer, sentences x longest sentence "
        f"x (1 + top_k), at most {settings.max_response_values} values (TAGGER_MAX_RESPONSE_VALUES). The binary "
        "tensor extension (Inference-Header-Content-Length) is supported; its bodies are not described here.",
    }
