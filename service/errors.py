"""API errors: every refusal is a JSON body naming the field and the limit, and is counted.

{"error": {"status": 422, "reason": "too_many_tokens", "field": "sentences[3]",
           "message": "sentences[3] has 600 tokens; the limit is 512 (TAGGER_MAX_TOKENS)"}}

Under /v2 (the Open Inference Protocol) the same refusal is the protocol's {"error": "<message>"}; its
reason is in the `x-tagger-reason` header, as on /v1, for the metrics.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.schemas import ErrorDetail, ErrorResponse, TagRequest

logger = logging.getLogger("tagger")
# the id of the request being answered (set by `service.edge.middleware.RequestIds`), for error bodies and log lines
REQUEST_ID = contextvars.ContextVar[str | None]("request_id", default=None)
# whether the request is one of the Open Inference Protocol's (/v2 and below; set by RequestIds too): its
# errors are the protocol's {"error": "<message>"}, and a body that fails validation is a 400
OIP = contextvars.ContextVar[bool]("oip", default=False)


def is_oip(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


class ApiError(Exception):
    """A refusal raised where it is detected; turned into an `ErrorResponse`."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(status=status, reason=reason, message=message, field=field, line=line)
        self.headers = headers


def error_response(detail: ErrorDetail, headers: dict[str, str] | None = None) -> JSONResponse:
    if detail.request_id is None and REQUEST_ID.get() is not None:
        detail = detail.model_copy(update={"request_id": REQUEST_ID.get()})
    if OIP.get():
        response = JSONResponse({"error": detail.message}, detail.status, headers)
    else:
        response = JSONResponse(ErrorResponse(error=detail).model_dump(exclude_none=True), detail.status, headers)
    response.headers["x-tagger-reason"] = detail.reason  # read by the metrics middleware
    return response


def field_path(loc: tuple[Any, ...]) -> str:
    """("body", "sentences", 0, 2) -> "sentences[0][2]"."""
    path = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.detail, exc.headers)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Pydantic's errors, reworded: the first one names the field; JSON syntax and UTF-8 are 400."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    kind = first.get("type", "")
    if kind == "json_invalid":
        cause = first.get("ctx", {}).get("error", "invalid JSON")
        return error_response(
            ErrorDetail(status=400, reason="invalid_json", message=f"body is not valid JSON: {cause}")
        )
    field = field_path(tuple(first.get("loc", ())))
    message = f"{field}: {first.get('msg', 'invalid')}"
    if kind == "extra_forbidden":
        message = f"{field}: unknown field; allowed: {', '.join(TagRequest.model_fields)}"
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more problems)"
    status = 400 if OIP.get() else 422
    return error_response(ErrorDetail(status=status, reason="invalid_request", message=message, field=field))


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (404 route, 405 method) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    reasons = {404: "not_found", 405: "method_not_allowed"}
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words when Python's parser gave up beyond a syntax error: RecursionError, or ValueError
        # for an integer of more than 4,300 digits
        message = "body is not valid JSON: nested too deeply, or a number too long to read"
        return error_response(ErrorDetail(status=400, reason="invalid_json", message=message))
    detail = ErrorDetail(
        status=exc.status_code, reason=reasons.get(exc.status_code, "http_error"), message=str(exc.detail)
    )
    return error_response(detail, dict(exc.headers) if exc.headers else None)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a refusal: logged with its traceback, answered without one.

    Starlette calls this from its outermost middleware, outside `RequestIds`, which so never sees the answer
    go out: the request's id header is set here (the id itself outlives the middleware, in `REQUEST_ID`).
    """
    request_id = REQUEST_ID.get()
    logger.exception(
        "unexpected error on %s %s (request id %s)", request.method, request.url.path, request_id, exc_info=exc
    )
    detail = ErrorDetail(status=500, reason="internal_error", message="internal error; the server log has details")
    return error_response(detail, {"X-Request-ID": request_id} if request_id is not None else None)
