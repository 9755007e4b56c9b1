"""ASGI middleware: the guard in front of the JSON parser, and request metrics around everything.

The guard reads a POST body once, bounded by `max_body_bytes`, and refuses it
before any parsing when it is too large (413), not JSON (415) or not UTF-8
(400); the app then reads the same bytes from memory. The Open Inference Protocol's tensor routes
may carry binary tensor data after their JSON: for them it checks the size alone, and the route the rest.

A body too large is read on and thrown away (up to `DRAIN_FACTOR` times the
limit) before the 413 goes out: many clients (Python's urllib, with its
`Connection: close`) write the whole body before they read, and a server that
answers and closes with unread bytes makes the kernel reset the connection,
so the client sees a broken pipe instead of the 413. A client that asked for
`Expect: 100-continue` has sent nothing yet, and is answered at once.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.schemas import ErrorDetail
from service.edge.bodies import body_kind
from service.errors import OIP, REQUEST_ID, error_response, is_oip
from service.observability.logs import access
from service.observability.metrics import Metrics

DRAIN_FACTOR = 8  # a body over the limit is read and discarded up to this many times the limit, then answered
# the Open Inference Protocol's tensor routes: JSON, or JSON then binary tensor data (binary tensor extension),
# with or without a content type (tritonclient sends none); the route reads the JSON object and checks it
TENSOR_MEDIA = ("", "application/json", "application/octet-stream")
# readiness probes: a 503 while warming up or draining is the probe working, not a refusal
PROBES = {"/readyz", "/v2/health/ready", "/v2/models/{model}/ready", "/v2/models/{model}/versions/{version}/ready"}


class RequestGuard:
    """Body checks for the POST routes; anything else (an unknown path, a GET route) goes on to routing,
    which answers 404 or 405 before anyone looks at a content type."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, routes: Sequence[BaseRoute]) -> None:
        """`routes`: every route the app serves; each POST route is guarded by the body kind its router declares
        (`service.edge.bodies`)."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._all = routes
        self._split: tuple[list[BaseRoute], list[BaseRoute]] | None = None

    def _post_routes(self) -> tuple[list[BaseRoute], list[BaseRoute]]:
        """(JSON routes, tensor routes) among the app's POST routes."""
        if self._split is None:
            posts = [route for route in self._all if "POST" in getattr(route, "methods", set())]
            self._split = (
                [route for route in posts if body_kind(route) == "json"],
                [route for route in posts if body_kind(route) == "tensors"],
            )
        return self._split

    @staticmethod
    def _routed(scope: Scope, routes: Sequence[BaseRoute]) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        json_routes, tensor_routes = self._post_routes()
        # only /v2 paths can be tensor routes: the /v1 requests skip matching them
        tensors = scope["path"].startswith("/v2/") and self._routed(scope, tensor_routes)
        if not tensors and not self._routed(scope, json_routes):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._check_headers(headers, TENSOR_MEDIA if tensors else ("application/json",))
        body, unread = b"", True
        if refusal is None:
            body, refusal, unread = await self._read(receive, text=not tensors)
        if refusal is not None:
            expecting = headers.get("expect", "").lower() == "100-continue"  # nothing sent until we say go on
            if refusal.reason == "body_too_large" and unread and not expecting:
                await self._discard(receive)
            await error_response(refusal)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect, as the client sends it

        await self.app(scope, replay, send)

    def _check_headers(self, headers: dict[str, str], media_types: tuple[str, ...]) -> ErrorDetail | None:
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in media_types:
            shown = media or "none"
            allowed = " or ".join(m for m in media_types if m) + (" (or none)" if "" in media_types else "")
            return ErrorDetail(
                status=415,
                reason="unsupported_media_type",
                message=f"content-type must be {allowed}, got {shown}",
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large(int(length))
        return None

    async def _read(self, receive: Receive, text: bool = True) -> tuple[bytes, ErrorDetail | None, bool]:
        """(body, refusal or None, whether part of the body is still unread); `text`: check it is UTF-8 JSON text."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = ErrorDetail(status=400, reason="client_disconnected", message="client left mid-body")
                return b"", gone, False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", self._too_large(size), bool(message.get("more_body", False))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not text:
            return body, None, False
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            bad = f"body is not valid UTF-8 (byte offset {err.start})"
            return b"", ErrorDetail(status=400, reason="invalid_utf8", message=bad), False
        if (b"NaN" in body or b"Infinity" in body) and _has_non_json_constant(body):
            constants = "body is not valid JSON: NaN, Infinity and -Infinity are not JSON numbers"
            return b"", ErrorDetail(status=400, reason="invalid_json", message=constants), False
        return body, None, False

    async def _discard(self, receive: Receive) -> None:
        """Read the rest of a refused body and drop it, up to DRAIN_FACTOR x the limit (the body timeout applies)."""
        read = 0
        while read <= DRAIN_FACTOR * self.max_body_bytes:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            read += len(message.get("body", b""))

    def _too_large(self, size: int) -> ErrorDetail:
        return ErrorDetail(
            status=413,
            reason="body_too_large",
            message=f"body has {size} bytes or more; the limit is {self.max_body_bytes} (TAGGER_MAX_BODY_BYTES)",
        )


def _has_non_json_constant(body: bytes) -> bool:
    """Whether Python's lenient parser would read a NaN or an Infinity literal (not in a string) in `body`."""

    def refuse(constant: str) -> None:
        raise _NonJsonConstant(constant)

    try:
        json.loads(body, parse_constant=refuse)
    except _NonJsonConstant:
        return True
    except (ValueError, RecursionError):
        return False  # invalid otherwise: the app's parser says how
    return False


class _NonJsonConstant(Exception):
    pass


_VALID_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class RequestIds:
    """Give every request an id: the client's `X-Request-ID` if it is a sane one, else a new one.

    The id is echoed in the `X-Request-ID` response header and in every error
    body (`service.errors` reads `REQUEST_ID`), and named in the server's log
    lines for the request, so a client's report can be found in the logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
        # not reset afterwards: each request runs in a task of its own (a copy of the context), and the
        # handler of unexpected errors runs outside this middleware, after it
        REQUEST_ID.set(request_id)
        OIP.set(is_oip(scope["path"]))  # the shape of its error bodies

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class RequestMetrics:
    """Count and time every request by route template, model and status; count refusals by reason."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        routes: Sequence[BaseRoute],
        models: Callable[[], set[str]],
        default_model: str,
        access_log: bool = False,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.models = models
        self.default_model = default_model
        self.access_log = access_log

    def _route(self, scope: Scope) -> tuple[str, dict[str, str]]:
        """The matched route template and path parameters, also for requests refused before routing."""
        if "route" in scope:
            return getattr(scope["route"], "path", "unmatched"), scope.get("path_params", {})
        for route in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", "unmatched"), child.get("path_params", {})
        return "unmatched", {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, reason = 500, ""

        async def send_and_watch(message: Message) -> None:
            nonlocal status, reason
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", []):
                    if key == b"x-tagger-reason":
                        reason = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            path, params = self._route(scope)
            model = params.get("model", self.default_model if path == "/v1/tag" else "")
            if model and model not in self.models():
                model = "unknown"
            labels = (path, model, str(status))
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(*labels).inc()
            self.metrics.request_latency.labels(*labels).observe(seconds)
            if status >= 400 and path not in PROBES:
                self.metrics.rejections.labels(reason or f"http_{status}").inc()
            if self.access_log:
                sentences, tokens = scope.get("state", {}).get("tagged", (0, 0))
                rid = REQUEST_ID.get() or "-"
                access(scope["method"], path, model, status, sentences, tokens, 1000 * seconds, rid)
