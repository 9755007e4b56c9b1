"""The tag routes' requests, answered without FastAPI's per-request machinery.

FastAPI still declares `POST /v1/tag` and `POST /v1/models/{model}/tag`
(the OpenAPI document, 405 for other methods); this middleware, inside the
body guard, answers their POSTs itself: the same JSON parsing (Python's
`json`), the same `TagRequest` validation, the same errors, the same route
code (`service.api.routes.tag_request`). What it skips is what FastAPI does around a
route on every request (a second pass of route matching, the dependency
solver, exit stacks, telemetry hooks): measured at about a third of the
server's own CPU per request on a one-sentence request.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.routes import echo_response, tag_request
from service.api.schemas import TagRequest
from service.errors import ApiError, handle_api_error, handle_http_error, handle_validation_error
from service.state import AppState

PREFIX, SUFFIX = "/v1/models/", "/tag"


class TagFastPath:
    """POSTs to the tag routes; everything else goes on to FastAPI."""

    def __init__(self, app: ASGIApp, state: AppState, routes: list[BaseRoute]) -> None:
        self.app = app
        self.state = state
        paths = {getattr(route, "path", ""): route for route in routes}
        self.default_route = paths["/v1/tag"]
        self.named_route = paths["/v1/models/{model}/tag"]
        self.echo_route = paths.get("/v1/echo")  # mounted for benchmarks: the same path, without a model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/v1/echo" and self.echo_route is not None:
            name, route = "", self.echo_route
        elif path == "/v1/tag":
            name, route = self.state.settings.default_model, self.default_route
        elif path.startswith(PREFIX) and path.endswith(SUFFIX) and "/" not in path[len(PREFIX) : -len(SUFFIX)]:
            name, route = path[len(PREFIX) : -len(SUFFIX)], self.named_route
            if not name:
                await self.app(scope, receive, send)
                return
        else:
            await self.app(scope, receive, send)
            return
        scope["route"], scope["path_params"] = route, ({"model": name} if route is self.named_route else {})
        request = Request(scope, receive)
        try:
            body = _parsed(await request.body())
            response = await tag_request(self.state, name, body, request) if name else echo_response(body)
        except ApiError as err:
            response = await handle_api_error(request, err)
        except RequestValidationError as err:
            response = await handle_validation_error(request, err)
        except HTTPException as err:
            response = await handle_http_error(request, err)
        await response(scope, receive, send)


def _parsed(body: bytes) -> TagRequest:
    """The body as FastAPI reads a JSON body parameter, with its errors."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        document: Any = json.loads(body)
    except json.JSONDecodeError as err:
        error = {"type": "json_invalid", "loc": ("body", err.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": err.msg}}]) from None
    except (ValueError, RecursionError):  # an integer of more than 4,300 digits, or nesting too deep
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from None
    try:
        return TagRequest.model_validate(document)
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
