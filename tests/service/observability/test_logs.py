"""What the server's log says: each model loaded, when it is ready, one access line per request; in text or in
JSON lines, and without access lines when asked."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port, server_output, start_server, wait_ready

pytestmark = [pytest.mark.trains, pytest.mark.server]


def served_log(models_dir: Path, **env: str) -> list[str]:
    """The output of a server that answered one request, after it stopped."""
    port = free_port()
    process = start_server(models_dir, port, **env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        request = urllib.request.Request(
            f"{base}/v1/tag",
            json.dumps({"sentences": [["The", "cat", "sat"]]}).encode(),
            {"content-type": "application/json", "x-request-id": "log-test-1"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    return server_output(process).splitlines()


def test_json_lines_name_the_models_the_readiness_and_each_request(models_dir: Path) -> None:
    lines = [json.loads(line) for line in served_log(models_dir, TAGGER_LOG_FORMAT="json")]
    messages = [entry["message"] for entry in lines]
    assert any(m.startswith("loaded model tiny version ") and " task upos " in m for m in messages)
    assert any(m.startswith("ready: tiny warmed up in ") for m in messages)
    (access,) = [entry for entry in lines if entry["logger"] == "tagger.access" and entry["route"] == "/v1/tag"]
    assert access | {"ms": 0} == access | {
        "method": "POST",
        "model": "tiny",
        "status": 200,
        "sentences": 1,
        "tokens": 3,
        "request_id": "log-test-1",
        "ms": 0,
    }
    assert any(entry["logger"].startswith("uvicorn") for entry in lines)  # one format for every line


def test_access_lines_can_be_turned_off(models_dir: Path) -> None:
    lines = served_log(models_dir, TAGGER_ACCESS_LOG="false")
    assert not any("tagger.access" in line for line in lines)
    assert any("loaded model tiny" in line for line in lines)
