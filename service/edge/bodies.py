"""What each POST route reads, declared where the route is defined, so that a new route is guarded by default.

The body guard (`service.edge.middleware.RequestGuard`) checks every POST route of the app by its declaration:
JSON text (the default: size, content type, UTF-8), JSON then binary tensor data (the Open Inference Protocol's
tensor routes: size alone, the route checks the rest) or nothing (routes that read no body). A router declares its
kind with `APIRouter(route_class=...)`; a route with no declaration is JSON, and so is checked.
"""

from __future__ import annotations

from typing import Literal

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

BodyKind = Literal["json", "tensors", "none"]


class TensorBodyRoute(APIRoute):
    """A route whose body is JSON, or JSON then binary tensor data (with or without a content type)."""

    body: BodyKind = "tensors"


class NoBodyRoute(APIRoute):
    """A route that reads no body (model control's load and unload)."""

    body: BodyKind = "none"


def body_kind(route: BaseRoute) -> BodyKind:
    kind: BodyKind = getattr(route, "body", "json")
    return kind
