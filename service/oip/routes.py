"""The Open Inference Protocol (KServe v2) REST API beside /v1: health, metadata and inference.

What tritonclient, KServe and MLServer clients speak. Inference takes one input, `text` (BYTES [N]) or
`tokens` (BYTES [N, T], "" after a sentence's end), and runs the /v1 request path unchanged: a `TagRequest`
built from the tensor goes through `service.pipeline` (every /v1 limit, a 422 as on /v1, named in the tensors'
terms), the model's batcher, its deadline and its 503s and 504, and the pipeline's typed results become the output
tensors (`service.oip.tensors`): the same tags, scores and spans as /v1 for the same sentences.

Errors are the protocol's `{"error": "<message>"}` (`service.errors` renders every refusal under /v2 so,
the body guard's and the access control's included); a malformed request is a 400. Concessions: tensors
are padded to the longest sentence, so the padded answer has a limit of its own (422); top-k is two extra
outputs, not Triton's classification extension; the version is the model's content hash, one per model.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from service.api.schemas import TagRequest
from service.edge.bodies import TensorBodyRoute
from service.errors import ApiError
from service.models.served import Served
from service.oip.outputs import answer_body, asked_outputs, output_tensors
from service.oip.schemas import (
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    OipError,
    RequestParameters,
    ServerLive,
    ServerMetadata,
    ServerReady,
    request_schema,
)
from service.oip.tensors import HEADER_LENGTH, INPUTS, OUTPUTS, input_strings, read_body, sentences
from service.pipeline import Fields, Prepared, tag_current
from service.results import sentence_results
from service.settings import Settings
from service.state import AppState, app_state

# what GET /v2 lists: the protocol extensions this server implements (the model repository's routes add theirs)
EXTENSIONS: list[str] = ["binary_tensor_data"]
PLATFORM = "onnxruntime_onnx"
TENSOR_FIELDS = Fields(sentences="tokens", texts="text", top_k="parameters.top_k")  # what refusals call them here

router = APIRouter(tags=["Open Inference Protocol (v2)"], route_class=TensorBodyRoute)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": OipError} for code in codes}


try:
    SERVER_VERSION = version("tagger")
except PackageNotFoundError:  # run from a checkout that was never installed
    SERVER_VERSION = "0+unknown"


@router.get("/v2", summary="Server metadata", response_model=ServerMetadata, responses=_errors(401, 429))
async def server_metadata(request: Request) -> dict[str, Any]:
    """The server's name, version and the protocol extensions it implements."""
    control = request.app.state.tagger.settings.control_token is not None  # /v2/repository is mounted
    extensions = [*EXTENSIONS, "model_repository"] if control else EXTENSIONS
    return {"name": "tagger", "version": SERVER_VERSION, "extensions": extensions}


@router.get("/v2/health/live", summary="Server liveness", response_model=ServerLive)
async def server_live() -> dict[str, bool]:
    """The process is up (as /livez)."""
    return {"live": True}


@router.get(
    "/v2/health/ready",
    summary="Server readiness",
    response_model=ServerReady,
    responses={503: {"model": ServerReady, "description": "warming up, draining, or an inference process restarting"}},
)
async def server_ready(request: Request) -> JSONResponse:
    """200 once every model is loaded and warmed up; 503 before that and while draining (as /readyz)."""
    ready = app_state(request).not_ready() is None
    return JSONResponse({"ready": ready}, 200 if ready else 503)


def _model(request: Request, name: str, wanted: str | None) -> tuple[AppState, Served]:
    """The served model of that name (and version, when the path names one), else a 404."""
    state = app_state(request)
    served = state.served(name)
    if wanted is not None and wanted != served.version:
        message = f"model {name!r} has no version {wanted!r}; it serves version {served.version!r}"
        raise ApiError(404, "unknown_version", message, "version")
    return state, served


def _metadata(served: Served) -> dict[str, Any]:
    inputs = [
        {"name": name, "datatype": "BYTES", "shape": [-1] * len(shape.split(","))} for name, shape in INPUTS.items()
    ]
    outputs = [
        {"name": name, "datatype": datatype, "shape": shape}
        for name, (datatype, shape) in OUTPUTS.items()
        if served.spans or name != "spans"
    ]
    return {
        "name": served.name,
        "versions": [served.version],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs,
    }


METADATA = _errors(401, 404, 429)


@router.get("/v2/models/{model}", summary="Model metadata", response_model=ModelMetadata, responses=METADATA)
async def model_metadata(model: str, request: Request) -> dict[str, Any]:
    """The model's version, inputs (give one) and outputs (tags, scores, top_k_tags, top_k_scores, offsets, spans)."""
    return _metadata(_model(request, model, None)[1])


@router.get(
    "/v2/models/{model}/versions/{version}",
    summary="Model metadata, of one version",
    response_model=ModelMetadata,
    responses=METADATA,
)
async def model_version_metadata(model: str, version: str, request: Request) -> dict[str, Any]:
    """As GET /v2/models/{model}, when the version is the one served (the first 12 hex digits of its sha256)."""
    return _metadata(_model(request, model, version)[1])


READINESS = {
    **_errors(401, 404, 429),
    503: {"model": ModelReady, "description": "warming up, draining, or its inference process restarting"},
}


def _ready(request: Request, name: str, wanted: str | None) -> JSONResponse:
    state, served = _model(request, name, wanted)
    ready = state.model_ready(served)
    return JSONResponse({"name": name, "ready": ready}, 200 if ready else 503)


@router.get("/v2/models/{model}/ready", summary="Model readiness", response_model=ModelReady, responses=READINESS)
async def model_ready(model: str, request: Request) -> JSONResponse:
    """200 when the model takes requests; 503 while the server warms up or drains, or its process restarts."""
    return _ready(request, model, None)


@router.get(
    "/v2/models/{model}/versions/{version}/ready",
    summary="Model readiness, of one version",
    response_model=ModelReady,
    responses=READINESS,
)
async def model_version_ready(model: str, version: str, request: Request) -> JSONResponse:
    """As GET /v2/models/{model}/ready, for the version served."""
    return _ready(request, model, version)


INFER: dict[str, Any] = {
    "response_model": InferenceResponse,
    "responses": {
        200: {
            "description": "the outputs; with binary outputs (binary tensor extension), the JSON object's length is "
            "in Inference-Header-Content-Length and the tensors' bytes follow it",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **_errors(400, 401, 404, 413, 415, 422, 429, 503, 504),
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}},
        }
    },
}


@router.post("/v2/models/{model}/infer", summary="Inference", **INFER)
async def infer(model: str, request: Request) -> Response:
    """Tag `text` (BYTES [N]) or `tokens` (BYTES [N, T]): the outputs tags, scores, top_k_tags, top_k_scores
    (with parameters.top_k), offsets (text) and spans (span models), padded to the longest sentence."""
    return await _infer(request, model, None)


@router.post("/v2/models/{model}/versions/{version}/infer", summary="Inference, with one version", **INFER)
async def infer_version(model: str, version: str, request: Request) -> Response:
    """As POST /v2/models/{model}/infer, when the version is the one served."""
    return await _infer(request, model, version)


async def _infer(request: Request, name: str, wanted: str | None) -> Response:
    state, served = _model(request, name, wanted)
    settings = state.settings
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        message = f"content-encoding {encoding} is not supported; send the body uncompressed"
        raise ApiError(415, "unsupported_media_type", message)
    body, tail = read_body(await request.body(), request.headers.get(HEADER_LENGTH))
    tensor, values = input_strings(body, tail, settings)
    asked = asked_outputs(body, tensor.name, served.spans, name)
    names = {a.name for a in asked}
    k = (body.parameters or RequestParameters()).top_k
    if k > settings.max_top_k:  # also when no top-k output is asked for: /v1 refuses it whatever it answers
        message = f"parameters.top_k is {k}; the limit is {settings.max_top_k} (TAGGER_MAX_TOP_K)"
        raise ApiError(422, "top_k_too_large", message, "parameters.top_k")
    k = k if names & {"top_k_tags", "top_k_scores"} else 0
    given = {"texts": values} if tensor.name == "text" else {"sentences": sentences(values, tensor.shape)}
    tag = TagRequest.model_validate({**given, "scores": "scores" in names, "top_k": k})

    def check(current: Served, prepared: Prepared) -> None:
        if wanted is not None and current is not served:  # the version named in the path was swapped out
            _model(request, name, wanted)
        _check_padded([len(s) for s in prepared.tokens], k, settings)

    served, prepared, tagged = await tag_current(state, name, tag, request, check, TENSOR_FIELDS)
    results = sentence_results(tag, prepared, tagged, served)
    tensors = output_tensors(results, asked, min(k, len(served.output_tags)))
    head = {"model_name": name, "model_version": served.version} | ({"id": body.id} if body.id is not None else {})
    content, header_length = answer_body(head, tensors, asked)
    if header_length is None:
        return Response(content, media_type="application/json")
    headers = {"Inference-Header-Content-Length": str(header_length)}
    return Response(content, media_type="application/octet-stream", headers=headers)


def _check_padded(lengths: list[int], k: int, settings: Settings) -> None:
    """The answer's tensors hold N x T (the longest sentence) positions, padding included: bound them as /v1
    bounds its answer (TAGGER_MAX_RESPONSE_VALUES), before anything is queued."""
    values = len(lengths) * max(lengths, default=0) * (1 + k)
    if values > settings.max_response_values:
        raise ApiError(
            422,
            "response_too_large",
            f"the output tensors are padded to the longest sentence: {len(lengths)} x {max(lengths)} positions "
            f"x (1 + top_k {k}) make {values} values; the limit is {settings.max_response_values} "
            "(TAGGER_MAX_RESPONSE_VALUES): send sentences of similar length together, fewer of them, or a smaller k",
            "inputs[0]",
        )


def document(schema: dict[str, Any], settings: Settings) -> None:
    """Add the inference request's schema, with the limits the server runs with, to the OpenAPI document."""
    schema["components"]["schemas"]["InferenceRequest"] = request_schema(settings, list(OUTPUTS))
