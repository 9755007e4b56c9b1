"""The FastAPI application: models loaded and verified once, batchers run in its lifespan."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.corrections import open_corrections
from service.api.corrections import router as corrections_router
from service.api.docs import mount_docs
from service.api.health import health_router
from service.api.openapi import with_limits
from service.api.routes import echo_router, router
from service.api.webpage import mount_ui
from service.edge.access import AccessControl, RateLimit, load_keys
from service.edge.fastpath import TagFastPath
from service.edge.middleware import RequestGuard, RequestIds, RequestMetrics
from service.errors import (
    ApiError,
    handle_api_error,
    handle_http_error,
    handle_unexpected,
    handle_validation_error,
)
from service.models.repository import Repository
from service.models.served import load_served, warm_up
from service.models.shadows import Shadows
from service.observability.drift import DriftCollector
from service.observability.metrics import InferenceProcesses, create_metrics
from service.observability.shadow import ShadowCollector
from service.oip import routes as oip
from service.oip.control import control_router
from service.settings import Settings
from service.state import AppState

log = logging.getLogger("tagger")


def create_app(settings: Settings) -> FastAPI:
    """Load and verify every model now (errors stop start-up); serve once the lifespan starts."""
    keys = load_keys(settings.api_keys_file) if settings.api_keys_file is not None else None
    metrics = create_metrics()
    models = load_served(settings, metrics)
    state = AppState(settings, metrics, models, Repository(settings, metrics, models))
    state.shadows = shadows = Shadows(settings, metrics, state.repository)
    if settings.control_token is not None:
        state.control_digest = hashlib.sha256(settings.control_token.get_secret_value().encode()).digest()
    # the versions serving and those draining after a swap or an unload (read from prometheus_client's thread too)
    metrics.prometheus.register(InferenceProcesses(lambda: state.repository.processes() + shadows.processes()))
    metrics.prometheus.register(ShadowCollector(shadows.agreements))
    # drift statistics of every served version against its reference (a copy of the dict: read in prometheus_client's
    # thread with TAGGER_METRICS_PORT, while loads change it)
    metrics.prometheus.register(DriftCollector(lambda: [m.drift for m in list(state.models.values()) if m.drift]))
    corrections = open_corrections(settings, metrics.prometheus)  # None unless TAGGER_CORRECTIONS_DB is set

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if corrections is not None:
            await corrections.start()  # migrations; a database down is retried later, tagging starts regardless
        for served in state.models.values():
            served.batcher.start()
        tasks = [asyncio.create_task(_warm(state))]
        if settings.model_poll_s > 0:
            tasks.append(asyncio.create_task(state.repository.poll_forever(settings.model_poll_s)))
            tasks.append(asyncio.create_task(shadows.poll_forever(settings.model_poll_s)))
        for task in tasks:
            state.background.add(task)
            task.add_done_callback(state.background.discard)
            task.add_done_callback(_log_failure)
        yield
        state.draining, state.ready, state.repository.closed = True, False, True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # a load cut short stops its inference process
        await state.repository.drain()  # old versions finishing their last requests
        await shadows.close()  # copies are never answers: nothing to wait for
        await asyncio.gather(*(served.batcher.drain() for served in state.models.values()))
        if corrections is not None:
            await corrections.close()  # the review sentences still buffered are written first

    app = FastAPI(
        title="tagger",
        summary="BiLSTM sequence tagging (POS, NER) on ONNX Runtime",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # mounted below, from local assets
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    if settings.docs:
        mount_docs(app, "/openapi.json")
    if settings.ui:
        mount_ui(app, docs=settings.docs)
    app.state.tagger = state
    app.state.corrections = corrections  # the corrections routes' store (None: they answer 404 corrections_off)
    app.state.review = corrections.writer if corrections is not None and settings.review_sample > 0 else None
    app.openapi = with_limits(app, settings, [oip.document])  # type: ignore[method-assign]
    # every router the app serves, in one place: each is included, and each POST route of theirs is body-guarded
    # as it declares (service.edge.bodies), so a route cannot be served without its guard
    routers = [router, health_router, oip.router, corrections_router]
    routers += [control_router] if settings.control_token is not None else []
    routers += [echo_router] if settings.echo_endpoint else []
    for one in routers:
        app.include_router(one)
    served_routes = [route for one in routers for route in one.routes]
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)
    v1 = [*router.routes, *(echo_router.routes if settings.echo_endpoint else [])]
    # inside the body guard: the tag routes' POSTs, answered without FastAPI's per-request machinery
    app.add_middleware(TagFastPath, state=state, routes=v1)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, routes=served_routes)
    if keys is not None or settings.rate_limit > 0:
        burst = settings.rate_burst or max(1, math.ceil(2 * settings.rate_limit))
        limit = RateLimit(settings.rate_limit, burst) if settings.rate_limit > 0 else None
        app.add_middleware(AccessControl, keys=keys, limit=limit, limited=metrics.rate_limited)
    app.add_middleware(
        RequestMetrics,
        metrics=metrics,
        routes=served_routes,  # matched for requests refused before routing
        models=lambda: set(state.models),
        default_model=settings.default_model,
        access_log=settings.access_log,
    )
    app.add_middleware(RequestIds)  # outermost: every response and error, refusals included, carries the id
    return app


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_coro().__qualname__, exc_info=task.exception())  # type: ignore[union-attr]


async def _warm(state: AppState) -> None:
    started = time.perf_counter()
    if state.settings.warmup:
        for served in list(state.models.values()):  # a load or an unload may change the dict meanwhile
            await warm_up(served)
    state.ready = True
    log.info("ready: %s warmed up in %.1f s", ", ".join(sorted(state.models)), time.perf_counter() - started)
