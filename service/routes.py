"""HTTP routes: tagging, model information, health and metrics."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.answers import answer
from service.batcher import DeadlineExceeded, Draining, Overloaded, QueueFull, TooSlow, WorkerLost
from service.errors import ApiError
from service.metrics import Metrics
from service.registry import Served
from service.repository import Repository
from service.schemas import (
    ConlluResponse,
    DisplacyResponse,
    ErrorResponse,
    Limits,
    ModelInfo,
    ModelList,
    TagRequest,
    TagResponse,
)
from service.settings import Settings
from service.tagging import Prepared, placed, prepare
from tagger.decoding import Tagged


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    models: dict[str, Served]  # changed only by `repository` (loads, unloads, swaps)
    repository: Repository
    control_digest: bytes = b""  # sha256 of TAGGER_CONTROL_TOKEN: /v2/repository is mounted when set
    ready: bool = False
    draining: bool = False
    background: set[asyncio.Task[Any]] = field(default_factory=set)


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.tagger
    return state


StateDep = Annotated[AppState, Depends(get_state)]
# what each tag route can answer besides 200 (the default model always exists: no 404 on /v1/tag)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 415, 422, 429, 503, 504)
}
NAMED_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"model": ErrorResponse}}
router = APIRouter()


def _served(state: AppState, name: str) -> Served:
    served = state.models.get(name)
    if served is None:
        raise ApiError(404, "unknown_model", f"model {name!r} is not served; served: {sorted(state.models)}", "model")
    return served


# A request whose results take longer than this starts watching for its client
# to leave. Most answer sooner (a lone request runs at once), and a watcher task
# per request (created, then cancelled) costs the event loop about 20 us
# (measured alone; within noise in the load benchmark). Sentences of a client
# gone in the first 50 ms are in a batch already.
DISCONNECT_GRACE_S = 0.05


async def _results(futures: Sequence[asyncio.Future[Tagged]], request: Request, timeout: float) -> list[Tagged]:
    """Wait for every sentence's result; give up (and free the queue) on deadline or disconnect."""
    loop = asyncio.get_running_loop()
    gathered: asyncio.Future[Any] = asyncio.gather(*futures) if len(futures) > 1 else futures[0]
    gave_up: list[bool] = []  # set when the timer (deadline) or the watcher (disconnect) cancelled `gathered`

    def give_up(disconnected: bool) -> None:
        if not gathered.done():
            gave_up.append(disconnected)
            gathered.cancel()  # queued sentences of this request are dropped before they run

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        give_up(True)

    watchers: list[asyncio.Task[None]] = []
    timers = [
        loop.call_later(timeout, give_up, False),
        loop.call_later(DISCONNECT_GRACE_S, lambda: watchers.append(loop.create_task(watch()))),
    ]
    try:
        done = await gathered
    except asyncio.CancelledError:
        if not gave_up:
            raise  # the server cancelled this request's task
        if gave_up[0]:
            raise ApiError(499, "client_disconnected", "the client closed the connection before its result") from None
        raise _deadline_exceeded(timeout) from None
    except DeadlineExceeded:
        raise _deadline_exceeded(timeout) from None
    except (QueueFull, Draining, WorkerLost) as err:
        raise _refused(err) from None
    finally:
        for timer in timers:
            timer.cancel()
        for watcher in watchers:
            watcher.cancel()
        for future in futures:  # after a failure, sentences still queued are dropped before they run
            future.cancel()
    return list(done) if len(futures) > 1 else [done]


def _refused(err: QueueFull | Draining | WorkerLost | Overloaded) -> ApiError:
    """503s, each with the Retry-After that fits it."""
    if isinstance(err, Overloaded):
        return ApiError(503, "overloaded", str(err), headers={"Retry-After": str(max(1, math.ceil(err.retry_after)))})
    if isinstance(err, QueueFull):
        return ApiError(503, "queue_full", str(err), headers={"Retry-After": "1"})
    if isinstance(err, Draining):
        return ApiError(503, "draining", str(err), headers={"Retry-After": "5"})
    return ApiError(503, "inference_restarting", f"{err}; retry", headers={"Retry-After": "2"})


def _deadline_exceeded(timeout: float) -> ApiError:
    return ApiError(504, "deadline_exceeded", f"no result within {timeout:g} s (TAGGER_REQUEST_TIMEOUT_S)")


async def tag_current(
    state: AppState,
    name: str,
    body: TagRequest,
    request: Request,
    check: Callable[[Served, Prepared], None] | None = None,
) -> tuple[Served, Prepared, list[Tagged]]:
    """Prepare and run a request on the model's version serving now; `check` sees it before it is queued.

    A swap does not fail a request: one queued on the old version and refused
    by it as it drains (its sentences waited for an inference process that the
    drain stopped) runs once more, on the new version (prepared again: the
    vocabularies may differ). The lookup and the queueing happen without
    yielding in between, so a request runs wholly on one version.
    """
    for last in (False, True):
        served = _served(state, name)
        prepared = prepare(body, served.vocab, state.settings)
        if check is not None:
            check(served, prepared)
        try:
            return served, prepared, await run_prepared(served, body, prepared, request, state.settings)
        except ApiError as err:
            replaced = err.detail.reason == "draining" and not state.draining and state.models.get(name) is not served
            if last or not replaced:
                raise
    raise AssertionError("unreachable")


async def tag_request(state: AppState, name: str, body: TagRequest, request: Request) -> Response:
    """A tag request's answer (the routes below, and `service.fastpath` in front of them)."""
    served, prepared, tagged = await tag_current(state, name, body, request)
    # Serialized here: FastAPI would otherwise re-validate the whole response
    # against its schema (which documents it) on the event loop, per request.
    payload = answer(name, body, prepared, tagged, served)
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


async def run_prepared(
    served: Served, body: TagRequest, prepared: Prepared, request: Request, settings: Settings
) -> list[Tagged]:
    """Queue a prepared request and wait for its results, one per input: the path /v1 and /v2 (service.oip) share."""
    request.state.tagged = (len(prepared.tokens), prepared.total_tokens)  # for the access log
    try:
        deadline = time.perf_counter() + settings.request_timeout_s
        details = body.scores or body.top_k > 0
        futures = served.batcher.submit(prepared.encoded, deadline, details=details) if prepared.encoded else []
    except TooSlow as err:
        raise ApiError(
            422, "request_too_slow", str(err), "sentences" if body.sentences is not None else "texts"
        ) from None
    except (QueueFull, Draining, WorkerLost, Overloaded) as err:
        raise _refused(err) from None
    answers = await _results(futures, request, settings.request_timeout_s) if futures else []
    return placed(prepared, answers, len(served.output_tags))


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
    return _info(_served(state, model), state.settings, card=True)


@router.get("/livez", summary="Liveness: the process is up")
async def livez() -> dict[str, str]:
    """The process is up."""
    return {"status": "alive"}


READY = {"application/json": {"example": {"status": "ready", "models": ["en-ner", "en-upos"]}}}
NOT_READY = {"application/json": {"example": {"status": "warming up"}}}


@router.get(
    "/readyz",
    summary="Readiness: every model loaded and warmed up",
    responses={
        200: {"description": "every model loaded and warmed up", "content": READY},
        503: {"description": "warming up, draining, or an inference process restarting", "content": NOT_READY},
    },
)
async def readyz(state: StateDep) -> JSONResponse:
    """200 once every model is loaded and warmed up; 503 before that and while draining."""
    why = not_ready(state)
    if why is not None:
        return JSONResponse(why, 503)
    return JSONResponse({"status": "ready", "models": sorted(state.models)})


def not_ready(state: AppState) -> dict[str, Any] | None:
    """Why the server is not ready (the body of /readyz's 503), or None when it is (also GET /v2/health/ready)."""
    if state.draining:
        return {"status": "draining"}
    if not state.ready:
        return {"status": "warming up"}
    down = sorted(name for name, served in state.models.items() if not served.batcher.available)
    if down:
        return {"status": "restarting", "models": down}
    return None


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text exposition format", "content": {CONTENT_TYPE_LATEST: {}}},
        404: {"model": ErrorResponse, "description": "metrics are served on TAGGER_METRICS_PORT"},
    },
)
async def metrics(state: StateDep) -> Response:
    """Prometheus text format."""
    if state.settings.metrics_port is not None:
        port = state.settings.metrics_port
        raise ApiError(404, "not_found", f"metrics are served on port {port} (TAGGER_METRICS_PORT)")
    for name, served in state.models.items():
        state.metrics.queue_depth.labels(name).set(served.batcher.depth)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


echo_router = APIRouter()


@echo_router.post("/v1/echo", include_in_schema=False)
async def echo(body: TagRequest) -> Response:
    """The HTTP + JSON ceiling for benchmarks (only mounted with TAGGER_ECHO_ENDPOINT=true)."""
    return echo_response(body)


def echo_response(body: TagRequest) -> Response:
    """The request, parsed and validated, as its answer: serialized as the tag routes serialize theirs."""
    payload = body.model_dump(exclude_none=True)
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), media_type="application/json")
