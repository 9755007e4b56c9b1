"""Helpers for tests that drive a live server: a free port, waiting for a condition, reading /metrics."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Poll `condition` until it holds; fail the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        time.sleep(0.01)


def metrics(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        return str(response.read().decode())


def abandon_request(port: int, body: bytes, queued: Callable[[], bool], linger: float) -> None:
    """POST `body` to /v1/tag on a raw connection and close it, unanswered, once `queued()` holds and
    `linger` seconds (the server's disconnect grace) have passed."""
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(
            b"POST /v1/tag HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        until(queued)
        time.sleep(linger)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[tuple[str, int]]:
    """Run `app` under uvicorn in a thread on a free port until ready; yields (base URL, port)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        until(lambda: getattr(getattr(app.state, "tagger", None), "ready", False), seconds=60)
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(30)
