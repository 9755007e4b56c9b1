"""The tag routes' fast path (service.edge.fastpath) answers every request as the FastAPI routes behind it do:
the same answers, the same refusals with the same statuses, reasons and messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from service.edge.fastpath import TagFastPath
from service.settings import Settings
from tests.helpers import ready_client

BODIES: list[tuple[str, bytes]] = [
    ("sentences", json.dumps({"sentences": [["The", "cat", "sat", "."]], "scores": True, "top_k": 2}).encode()),
    ("texts", json.dumps({"texts": ["I don't like green eggs.", "  "]}).encode()),
    ("conllu", json.dumps({"conllu": "1\tHi\t_\t_\t_\t_\t_\t_\t_\t_\n", "format": "conllu"}).encode()),
    ("empty body", b""),
    ("not JSON", b"{"),
    ("nested too deep", b"[" * 5000 + b"]" * 5000),
    ("5,000 digits", b'{"sentences": [["a"]], "top_k": ' + b"9" * 5000 + b"}"),
    ("a JSON array", b"[]"),
    ("an unknown field", b'{"sentences": [["a"]], "colour": "red"}'),
    ("a number for a token", b'{"sentences": [[3]]}'),
    ("two inputs", b'{"sentences": [["a"]], "texts": ["a"]}'),
    ("an empty sentence", b'{"sentences": [[]]}'),
    ("a lone surrogate", b'{"texts": ["\\ud800"]}'),
    ("top_k too large", b'{"sentences": [["a"]], "top_k": 99}'),
]
PATHS = ["/v1/tag", "/v1/models/en-ner/tag", "/v1/models/nope/tag", "/v1/echo"]


def started(fast: bool, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    if not fast:

        async def straight_on(self: TagFastPath, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)

        monkeypatch.setattr(TagFastPath, "__call__", straight_on)
    client: TestClient = ready_client(
        Settings(inference_process=False, warmup=False, echo_endpoint=True, access_log=False)
    )
    return client


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[bool, TestClient]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        routed = started(False, monkeypatch)
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = started(True, monkeypatch)
    yield {False: routed, True: fast}
    for client in (routed, fast):
        client.__exit__(None, None, None)


def seen(client: TestClient, path: str, body: bytes) -> tuple[int, Any, str | None]:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    answer = response.json()
    if "error" in answer:
        answer["error"].pop("request_id", None)
    return response.status_code, answer, response.headers.get("x-tagger-reason")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("name", "body"), BODIES, ids=[b[0] for b in BODIES])
def test_the_fast_path_answers_as_the_routes_do(
    clients: dict[bool, TestClient], path: str, name: str, body: bytes
) -> None:
    if path == "/v1/echo" and name == "a lone surrogate":
        pytest.skip("the benchmarks' echo endpoint checks no limits: it cannot write a lone surrogate back")
    assert seen(clients[True], path, body) == seen(clients[False], path, body)


def test_the_fast_path_is_taken_and_counted_under_the_route(clients: dict[bool, TestClient]) -> None:
    client = clients[True]
    assert client.post("/v1/models/en-ner/tag", json={"texts": ["Hi"]}).status_code == 200
    metrics = client.get("/metrics").text
    assert 'tagger_requests_total{model="en-ner",route="/v1/models/{model}/tag",status="200"}' in metrics
    assert client.get("/v1/tag").status_code == 405  # other methods: FastAPI's routes answer
