"""Helpers for tests that drive a live server: a free port, waiting for a condition, HTTP calls, /metrics,
a server in a thread of the test (`serving`) or as a process of its own (`start_server`)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


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
    """Run `app` under uvicorn, configured as `tagger serve` runs it, in a thread on a free port until ready;
    yields (base URL, port)."""
    from service.server import uvicorn_config

    port = free_port()
    config = uvicorn_config(app, app.state.tagger.settings, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        until(lambda: getattr(getattr(app.state, "tagger", None), "ready", False), seconds=60)
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(30)


def ready_client(settings: Settings, seconds: float = 30.0) -> TestClient:
    """A TestClient of `create_app(settings)`, entered (its lifespan started) and ready (/readyz 200), for tests
    that share one app across a module; the caller exits it (`client.__exit__(None, None, None)`)."""
    client = TestClient(create_app(settings))
    client.__enter__()
    until(lambda: client.get("/readyz").status_code == 200, seconds)
    return client


def get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post(url: str, body: dict) -> tuple[int, bytes]:
    """(status, body) of a JSON POST, errors included."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def start_server(models: Path, port: int, **env: str) -> subprocess.Popen[str]:
    """`tagger serve` on 127.0.0.1:port as a process of its own, serving `models` (default model "tiny").

    Its output goes to a file (`server_output` reads it), not a pipe: a server logs a line per request, and
    a pipe nobody reads would fill and stall it.
    """
    environment = {**os.environ, "TAGGER_DEFAULT_MODEL": "tiny", **env}
    log = tempfile.NamedTemporaryFile(prefix="tagger-serve-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--models", str(models), "--port", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()
    LOGS[process.pid] = Path(log.name)
    return process


LOGS: dict[int, Path] = {}  # server pid -> its output file


def server_output(process: subprocess.Popen[str]) -> str:
    """Everything a server started by `start_server` has printed so far."""
    return LOGS[process.pid].read_text(encoding="utf-8", errors="replace")


def wait_ready(base: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    """Wait until /readyz answers 200; fail with the server's output if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, server_output(process)
        try:
            if get(f"{base}/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("server never became ready")


@contextlib.contextmanager
def running_prometheus(folder: Path) -> Iterator[str]:
    """Debian's Prometheus on 127.0.0.1 with `folder`/prometheus.yml (its rule files beside it), until ready; its
    base URL. Skips the test when Prometheus is not installed (.ci/run installs it)."""
    import shutil

    import pytest

    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (.ci/run installs Debian's package)")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, "prometheus exited"
        with contextlib.suppress(OSError):
            return get(f"{base}/-/ready")[0] == 200
        return False

    try:
        until(ready, 60)
        yield base
    finally:
        process.terminate()
        process.wait(30)
