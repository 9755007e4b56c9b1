"""HTTP/1.1 connection limits below the ASGI app: header size and count, read timeouts, a connection cap.

uvicorn's httptools protocol buffers a request line and headers of any size
for as long as a client takes to send them: one unfinished 200 MB header
doubled a replica's memory (and httptools joins header pieces in quadratic
time), and 500 connections that never finish their headers were all still
open a minute later. This protocol refuses, before buffering more than the
limit and before the app sees anything:

- a request line longer than `max_header_bytes` (414), headers larger than
  that in all or more than `max_headers` of them (431), as nginx and h11 do;
- headers not complete `header_timeout_s` after the connection opened or the
  previous response ended (408), and a body not complete `body_timeout_s`
  after its headers (408): slow clients cannot hold a connection forever;
- connections beyond `max_connections` (503 at once, then closed), so the
  process keeps file descriptors for its own work (inference processes,
  model files, sockets to them).

Each refusal is a JSON body in the API's error shape with `Connection: close`,
and is counted in `tagger_rejections_total` by reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 16384  # request line, and all header names and values together
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1000


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the refusal to send is on the protocol."""


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    message: str


def refusal_bytes(refusal: Refusal) -> bytes:
    """A complete HTTP/1.1 response in the API's error shape, closing the connection."""
    body = json.dumps(
        {"error": {"status": refusal.status, "reason": refusal.reason, "message": refusal.message}}
    ).encode()
    head = (
        b"content-type: application/json\r\n"
        + b"content-length: %d\r\n" % len(body)
        + b"x-tagger-reason: "
        + refusal.reason.encode("ascii")
        + b"\r\nconnection: close\r\n\r\n"
    )
    return STATUS_LINE[refusal.status] + head + body


def guarded_protocol(limits: ConnectionLimits, on_refusal: Callable[[str], None]) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with `limits` enforced; `on_refusal(reason)` counts each refusal."""

    class GuardedProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_open = True  # reading a request line and headers (none started, or one in progress)
            self._head_bytes = 0
            self._header_count = 0
            self._refusal: Refusal | None = None
            self._head_timer: asyncio.TimerHandle | None = None
            self._body_timer: asyncio.TimerHandle | None = None

        # -- connections ------------------------------------------------------------------------

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                message = f"the server holds {limits.max_connections} connections (TAGGER_MAX_CONNECTIONS); retry"
                self._refuse(Refusal(503, "too_many_connections", message))
                return
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refusal is not None:
                return  # refused: the connection is closing, whatever else arrives
            if self._head_open:
                self._head_bytes += len(data)
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            except httptools.HttpParserError:
                if self._refusal is not None:
                    self._send_refusal()
                    return
                self._refuse(Refusal(400, "invalid_http", "the request is not valid HTTP/1.1"))
                return
            if self._head_open and self._head_bytes > limits.max_header_bytes:
                self._refuse(self._headers_too_large(self._head_bytes))

        # -- parser callbacks -----------------------------------------------------------------

        def on_message_begin(self) -> None:
            self._head_open, self._header_count = True, 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            if len(self.url) + len(url) > limits.max_header_bytes:
                self._refusal = Refusal(
                    414,
                    "uri_too_long",
                    f"the request line is over {limits.max_header_bytes} bytes (TAGGER_MAX_HEADER_BYTES)",
                )
                raise _Refused
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if self._header_count > limits.max_headers:
                self._refusal = Refusal(
                    431,
                    "too_many_headers",
                    f"the request has more than {limits.max_headers} headers (TAGGER_MAX_HEADERS)",
                )
                raise _Refused
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
            if size > limits.max_header_bytes:
                self._refusal = self._headers_too_large(size)
                raise _Refused
            self._head_open, self._head_bytes = False, 0
            self._cancel(self._head_timer)
            self._head_timer = None
            self._body_timer = self.loop.call_later(limits.body_timeout_s, self._body_timed_out)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._cancel(self._body_timer)
            self._body_timer = None
            self._head_open, self._head_bytes = True, 0  # whatever comes next is the next request's head
            super().on_message_complete()
            if self.cycle is None or self.cycle.response_complete:
                # answered before its body was in (a 401, 413, 415, 404): the next head is due from now on
                self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()  # the next request's headers are due within the timeout too

        # -- refusals --------------------------------------------------------------------------

        def _headers_too_large(self, size: int) -> Refusal:
            return Refusal(
                431,
                "headers_too_large",
                f"the request line and headers are {size} bytes or more; the limit is "
                f"{limits.max_header_bytes} (TAGGER_MAX_HEADER_BYTES)",
            )

        def _arm_head_timer(self) -> None:
            self._cancel(self._head_timer)
            self._head_timer = self.loop.call_later(limits.header_timeout_s, self._head_timed_out)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self._head_open or self.transport.is_closing():
                return  # a body is arriving (its own timer runs), or the connection is going anyway
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a response is still being computed: its own deadline applies
            if self._head_bytes == 0:
                self.transport.close()  # idle, no request begun: close quietly, nobody is waiting for an answer
                return
            message = f"headers not complete within {limits.header_timeout_s:g} s (TAGGER_HEADER_TIMEOUT_S)"
            self._refuse(Refusal(408, "header_timeout", message))

        def _body_timed_out(self) -> None:
            self._body_timer = None
            if self.transport.is_closing() or self.cycle is None or not self.cycle.more_body:
                return
            message = f"body not complete within {limits.body_timeout_s:g} s (TAGGER_BODY_TIMEOUT_S)"
            if self.cycle.response_started:
                self.transport.close()
                return
            self.cycle.disconnected = True  # the app, waiting for the body, sees the client as gone
            self.cycle.message_event.set()
            self._refuse(Refusal(408, "body_timeout", message))

        def _refuse(self, refusal: Refusal) -> None:
            self._refusal = refusal
            self._send_refusal()

        def _send_refusal(self) -> None:
            assert self._refusal is not None
            on_refusal(self._refusal.reason)
            self._cancel_timers()
            if not self.transport.is_closing():
                self.transport.write(refusal_bytes(self._refusal))
                self.transport.close()

        def _cancel_timers(self) -> None:
            self._cancel(self._head_timer)
            self._cancel(self._body_timer)
            self._head_timer = self._body_timer = None

        @staticmethod
        def _cancel(timer: asyncio.TimerHandle | None) -> None:
            if timer is not None:
                timer.cancel()

    return GuardedProtocol
