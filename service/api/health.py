"""Health and metrics: liveness, readiness (for probes and load balancers) and Prometheus's scrape."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.schemas import ErrorResponse
from service.errors import ApiError
from service.state import StateDep

health_router = APIRouter()


@health_router.get("/livez", summary="Liveness: the process is up")
async def livez() -> dict[str, str]:
    """The process is up."""
    return {"status": "alive"}


READY = {"application/json": {"example": {"status": "ready", "models": ["en-ner", "en-upos"]}}}
NOT_READY = {"application/json": {"example": {"status": "warming up"}}}


@health_router.get(
    "/readyz",
    summary="Readiness: every model loaded and warmed up",
    responses={
        200: {"description": "every model loaded and warmed up", "content": READY},
        503: {"description": "warming up, draining, or an inference process restarting", "content": NOT_READY},
    },
)
async def readyz(state: StateDep) -> JSONResponse:
    """200 once every model is loaded and warmed up; 503 before that and while draining."""
    why = state.not_ready()
    if why is not None:
        return JSONResponse(why, 503)
    return JSONResponse({"status": "ready", "models": sorted(state.models)})


@health_router.get(
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
    return Response(generate_latest(state.metrics.prometheus), media_type=CONTENT_TYPE_LATEST)
