"""Model control over HTTP, as Triton's model repository extension has it (`/v2/repository/...`).

Off unless `TAGGER_CONTROL_TOKEN` is set (Triton's model control is off by
default too); then each request needs `Authorization: Bearer <token>`.
Errors are Open Inference Protocol errors: `{"error": "<message>"}`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.edge.bodies import NoBodyRoute
from service.errors import ApiError
from service.models.repository import Entry, Repository
from service.models.shadows import Shadows


class RepositoryModel(BaseModel):
    """One model of the repository index."""

    name: str
    version: str = Field("", description="the version serving, or the one last tried; empty if none")
    state: str = Field(description="READY, LOADING or UNAVAILABLE")
    reason: str = Field("", description="why it is not READY, or what is under way (a new version loading)")


class ControlError(BaseModel):
    error: str


def _documented(model: Any, *errors: int) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model}, **{code: {"model": ControlError} for code in (401, *errors)}}


control_router = APIRouter(prefix="/v2/repository", tags=["model repository"], route_class=NoBodyRoute)


def _entry(entry: Entry) -> dict[str, str]:
    return {"name": entry.name, "version": entry.version or "", "state": entry.state, "reason": entry.reason}


async def _controlled(request: Request, action: Callable[[Repository], Awaitable[Any]]) -> JSONResponse:
    """Run `action` for a request carrying the control token; refusals as OIP errors."""
    state = request.app.state.tagger
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    digest = hashlib.sha256(token.strip().encode()).digest()
    try:
        if scheme.lower() != "bearer" or not hmac.compare_digest(digest, state.control_digest):
            raise ApiError(
                401,
                "bad_control_token",
                "model control needs Authorization: Bearer <TAGGER_CONTROL_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return JSONResponse(await action(state.repository))
    except ApiError as err:
        response = JSONResponse({"error": err.detail.message}, err.detail.status, err.headers)
        response.headers["x-tagger-reason"] = err.detail.reason  # read by the metrics middleware
        return response


async def _index(repository: Repository) -> list[dict[str, str]]:
    return [_entry(e) for e in await repository.index()]


@control_router.get(
    "/index",
    summary="The repository index: each model's name, version, state and reason",
    response_class=JSONResponse,
    responses=_documented(list[RepositoryModel]),
)
async def index(request: Request) -> JSONResponse:
    """Every model served or found in the models folder."""
    return await _controlled(request, _index)


@control_router.post(
    "/index",
    summary="The repository index (POST, as Triton's clients ask for it)",
    response_class=JSONResponse,
    responses=_documented(list[RepositoryModel]),
)
async def index_post(request: Request) -> JSONResponse:
    """The same as GET."""
    return await _controlled(request, _index)


@control_router.post(
    "/models/{model}/load",
    summary="Load a model, or swap in the new version of its folder",
    response_class=JSONResponse,
    responses=_documented(RepositoryModel, 400, 404, 409),
)
async def load(model: str, request: Request) -> JSONResponse:
    """Answers once the new version serves (the old one drains in the background). A version that fails to
    load leaves the old one serving; the answer (400) and the index say why."""

    async def action(repository: Repository) -> dict[str, str]:
        return _entry(await repository.load(model))

    return await _controlled(request, action)


@control_router.post(
    "/models/{model}/unload",
    summary="Stop serving a model (its admitted requests finish first)",
    response_class=JSONResponse,
    responses=_documented(RepositoryModel, 404, 409),
)
async def unload(model: str, request: Request) -> JSONResponse:
    """Answers once the model's admitted requests are answered and its inference process has stopped."""

    async def action(repository: Repository) -> dict[str, str]:
        return _entry(await repository.unload(model))

    return await _controlled(request, action)


class ShadowSummary(BaseModel):
    """How a shadow version agrees with the version serving (service.observability.shadow)."""

    model: str
    serving_version: str
    shadow_version: str
    sentences: int
    dropped: int = Field(description="copies not run: the shadow was behind (TAGGER_SHADOW_QUEUE) or refused them")
    tokens: int
    tag_agreement: float | None = Field(description="share of tokens given the same tag")
    span_f1: float | None = Field(description="span F1 of the shadow against the serving version (span models)")
    span_f1_by_label: dict[str, float | None]
    spans: dict[str, dict[str, int]]
    differing_tags: list[dict[str, Any]]
    mean_confidence: dict[str, float | None]
    mean_latency_s: dict[str, float | None]
    disagreeing_sentences: list[dict[str, Any]] = Field(description="the most recent, at most 20")


def _shadows(request: Request) -> Shadows:
    shadows: Shadows = request.app.state.tagger.shadows
    return shadows


@control_router.get(
    "/models/{model}/shadow",
    summary="How the model's shadow version agrees with the version serving",
    response_class=JSONResponse,
    responses=_documented(ShadowSummary, 404),
)
async def shadow_summary(model: str, request: Request) -> JSONResponse:
    """Agreement figures since the shadow was loaded, and a sample of the sentences where the two disagree."""

    async def action(repository: Repository) -> dict[str, Any]:
        return _shadows(request).get(model).agreement.summary()

    return await _controlled(request, action)


@control_router.post(
    "/models/{model}/shadow/load",
    summary="Load the candidate under <models>/.shadows/ as the model's shadow",
    response_class=JSONResponse,
    responses=_documented(ShadowSummary, 400, 404, 409),
)
async def shadow_load(model: str, request: Request) -> JSONResponse:
    """Answers once the shadow's inference process is loaded and warmed up; a share of the model's requests
    (TAGGER_SHADOW_SHARE) is then copied to it after each has been answered. Replaces a shadow already running."""

    async def action(repository: Repository) -> dict[str, Any]:
        return (await _shadows(request).load(model)).agreement.summary()

    return await _controlled(request, action)


@control_router.post(
    "/models/{model}/shadow/promote",
    summary="Serve the shadow version (through the repository's swap)",
    response_class=JSONResponse,
    responses=_documented(RepositoryModel, 404, 409),
)
async def shadow_promote(model: str, request: Request) -> JSONResponse:
    """The shadow's folder takes the serving folder's place (the old one is kept under <models>/.retired/) and is
    loaded as a new version: the old version drains, nothing is lost."""

    async def action(repository: Repository) -> dict[str, str]:
        await _shadows(request).promote(model)
        return _entry(repository.entries[model])

    return await _controlled(request, action)


@control_router.post(
    "/models/{model}/shadow/discard",
    summary="Stop the model's shadow",
    response_class=JSONResponse,
    responses=_documented(ShadowSummary, 404),
)
async def shadow_discard(model: str, request: Request) -> JSONResponse:
    """The shadow's last agreement figures; its inference process is stopped and its folder left as it is."""

    async def action(repository: Repository) -> dict[str, Any]:
        summary = _shadows(request).get(model).agreement.summary()
        await _shadows(request).discard(model)
        return summary

    return await _controlled(request, action)
