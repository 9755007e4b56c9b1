"""/v1's routes: tagging (named model or the default), and the models served with their information."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.answers import answer
from service.api.schemas import (
    ConlluResponse,
    DisplacyResponse,
    DriftReport,
    ErrorResponse,
    Limits,
    ModelInfo,
    ModelList,
    TagRequest,
    TagResponse,
)
from service.errors import ApiError
from service.models.served import Served
from service.observability.drift import compare
from service.pipeline import tag_current
from service.settings import Settings
from service.state import AppState, StateDep

# what each tag route can answer besides 200 (the default model always exists: no 404 on /v1/tag)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 415, 422, 429, 503, 504)
}
NAMED_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"model": ErrorResponse}}
router = APIRouter()


async def tag_request(state: AppState, name: str, body: TagRequest, request: Request) -> Response:
    """A tag request's answer (the routes below, and `service.edge.fastpath` in front of them)."""
    served, prepared, tagged = await tag_current(state, name, body, request)
    # Serialized here: FastAPI would otherwise re-validate the whole response
    # against its schema (which documents it) on the event loop, per request.
    payload = answer(name, body, prepared, tagged, served)
    return Response(
        json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")), media_type="application/json"
    )


# The tag routes read the state from the app directly: a dependency costs
# FastAPI's resolver a pass per request on the hottest path.
@router.post(
    "/v1/models/{model}/tag",
    summary="Tag with a named model",
    response_model=TagResponse | ConlluResponse | DisplacyResponse,
    response_model_exclude_none=True,
    responses=NAMED_ERRORS,
)
async def tag_with(model: str, body: TagRequest, request: Request) -> Response:
    """Tag sentences (token lists) or texts with the named model."""
    return await tag_request(request.app.state.tagger, model, body, request)


@router.post(
    "/v1/tag",
    summary="Tag with the default model",
    response_model=TagResponse | ConlluResponse | DisplacyResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
)
async def tag(body: TagRequest, request: Request) -> Response:
    """Tag sentences or texts with the default model."""
    state: AppState = request.app.state.tagger
    return await tag_request(state, state.settings.default_model, body, request)


def _info(served: Served, settings: Settings, card: bool = False) -> ModelInfo:
    metadata = served.metadata
    headline = ("sentences", "tokens", "accuracy", "precision", "recall", "f1")
    return ModelInfo(
        name=metadata.name,
        version=served.version,
        task=metadata.task,
        scheme=metadata.scheme,
        tags=list(served.output_tags),
        span_labels=sorted({t[2:] for t in served.output_tags if t != "O"}) if served.spans else None,
        model_scheme=metadata.tag_scheme,
        scores={split: {k: v for k, v in report.items() if k in headline} for split, report in metadata.scores.items()},
        sha256=metadata.files["model.onnx"],
        exported_at=metadata.exported_at,
        limits=Limits(**settings.model_dump(include=set(Limits.model_fields))),
        card=served.card if card else None,
    )


@router.get(
    "/v1/models",
    summary="List the served models",
    responses={code: {"model": ErrorResponse} for code in (401, 429)},
)
async def list_models(state: StateDep) -> ModelList:
    """Every served model, with its tag set, scores and request limits."""
    models = [_info(s, state.settings) for s in state.models.values()]
    return ModelList(default=state.settings.default_model, models=models)


@router.get(
    "/v1/models/{model}",
    summary="Describe one model",
    responses={code: {"model": ErrorResponse} for code in (401, 404, 429)},
)
async def model_info(model: str, state: StateDep) -> ModelInfo:
    """One model's name, version, task, tag set, scheme, scores, sha256, limits and model card."""
    return _info(state.served(model), state.settings, card=True)


echo_router = APIRouter()


@echo_router.post("/v1/echo", include_in_schema=False)
async def echo(body: TagRequest) -> Response:
    """The HTTP + JSON ceiling for benchmarks (only mounted with TAGGER_ECHO_ENDPOINT=true)."""
    return echo_response(body)


def echo_response(body: TagRequest) -> Response:
    """The request, parsed and validated, as its answer: serialized as the tag routes serialize theirs."""
    payload = body.model_dump(exclude_none=True)
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


@router.get(
    "/v1/models/{model}/drift",
    summary="Drift: live figures against the model's reference",
    responses={code: {"model": ErrorResponse} for code in (401, 404, 429)},
)
async def model_drift(model: str, state: StateDep) -> DriftReport:
    """This process's live drift figures for the version serving now, since it was loaded and over the last 15
    minutes, each against the reference profile its export carries (unknown-word rate, low-confidence share, case,
    script and tag mixes, with the PSI the alerts read). Several replicas: Prometheus's recording rules sum them."""
    served = state.served(model)
    if served.drift is None:
        raise ApiError(404, "drift_off", "drift statistics are off on this server (TAGGER_DRIFT=false)", "model")
    seconds, recent = served.drift.window()
    reference = served.drift.reference
    return DriftReport(
        model=served.name,
        version=served.version,
        reference=None if reference is None else compare(reference, None),
        since_start=compare(served.drift.copy().profile(), reference),
        recent=compare(recent.profile(), reference) | {"seconds": round(seconds, 1)},
    )
