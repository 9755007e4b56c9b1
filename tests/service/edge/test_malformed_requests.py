"""A catalogue of hostile and malformed requests: each gets its own clear 4xx, its reason, and is counted.

The protocol-level ones (huge heads, slow clients, too many connections, a chunked body past the limit) need
a real socket and are in test_hostile_clients.py, spoofed client addresses in test_access.py; these reach the app.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.trains

JSON = {"content-type": "application/json"}
LIMITS = {
    "max_sentences": 4,
    "max_tokens": 20,
    "max_token_chars": 15,
    "max_text_chars": 200,
    "max_body_bytes": 8192,
    "max_request_tokens": 40,
    "max_top_k": 3,
    "max_response_values": 60,
}
A_TOKEN = '["ok"]'
# (name, method, path, headers, body, expected status, expected reason)
CATALOGUE: list[tuple[str, str, str, dict[str, str], bytes | None, int, str]] = [
    ("no body", "POST", "/v1/tag", JSON, b"", 422, "invalid_request"),
    ("not JSON", "POST", "/v1/tag", JSON, b"sentences", 400, "invalid_json"),
    ("truncated JSON", "POST", "/v1/tag", JSON, b'{"sentences": [["a"]', 400, "invalid_json"),
    ("trailing garbage", "POST", "/v1/tag", JSON, b'{"texts": ["a"]} x', 400, "invalid_json"),
    ("NaN literal", "POST", "/v1/tag", JSON, b'{"sentences": [["a"]], "top_k": NaN}', 400, "invalid_json"),
    ("Infinity literal", "POST", "/v1/tag", JSON, b'{"sentences": [["a"]], "top_k": Infinity}', 400, "invalid_json"),
    ("-Infinity literal", "POST", "/v1/tag", JSON, b'{"sentences": [["a"]], "top_k": -Infinity}', 400, "invalid_json"),
    ("nesting 3,000 deep", "POST", "/v1/tag", JSON, b"[" * 3000 + b"]" * 3000, 400, "invalid_json"),
    (
        "a 5,000-digit integer",
        "POST",
        "/v1/tag",
        JSON,
        b'{"sentences": [["a"]], "top_k": ' + b"9" * 5000 + b"}",
        400,
        "invalid_json",
    ),
    ("not UTF-8", "POST", "/v1/tag", JSON, b'{"texts": ["caf\xe9"]}', 400, "invalid_utf8"),
    ("UTF-16 body", "POST", "/v1/tag", JSON, '{"texts": ["a"]}'.encode("utf-16"), 400, "invalid_utf8"),
    ("body over the limit", "POST", "/v1/tag", JSON, b'{"texts": ["' + b"a" * 9000 + b'"]}', 413, "body_too_large"),
    ("no content type", "POST", "/v1/tag", {}, b'{"texts": ["a"]}', 415, "unsupported_media_type"),
    (
        "form content type",
        "POST",
        "/v1/tag",
        {"content-type": "application/x-www-form-urlencoded"},
        b"texts=a",
        415,
        "unsupported_media_type",
    ),
    (
        "text/plain",
        "POST",
        "/v1/tag",
        {"content-type": "text/plain"},
        b'{"texts": ["a"]}',
        415,
        "unsupported_media_type",
    ),
    ("a JSON array", "POST", "/v1/tag", JSON, b'[["a"]]', 422, "invalid_request"),
    ("a JSON string", "POST", "/v1/tag", JSON, b'"hello"', 422, "invalid_request"),
    ("null", "POST", "/v1/tag", JSON, b"null", 422, "invalid_request"),
    ("empty object", "POST", "/v1/tag", JSON, b"{}", 422, "invalid_request"),
    ("both inputs", "POST", "/v1/tag", JSON, b'{"texts": ["a"], "sentences": [["a"]]}', 422, "invalid_request"),
    ("unknown field", "POST", "/v1/tag", JSON, b'{"texts": ["a"], "model": "x"}', 422, "invalid_request"),
    ("empty sentences list", "POST", "/v1/tag", JSON, b'{"sentences": []}', 422, "invalid_request"),
    ("empty texts list", "POST", "/v1/tag", JSON, b'{"texts": []}', 422, "invalid_request"),
    ("a number as a token", "POST", "/v1/tag", JSON, b'{"sentences": [["a", 3]]}', 422, "invalid_request"),
    ("a null token", "POST", "/v1/tag", JSON, b'{"sentences": [["a", null]]}', 422, "invalid_request"),
    ("a sentence that is a string", "POST", "/v1/tag", JSON, b'{"sentences": ["a b"]}', 422, "invalid_request"),
    ("a text that is a list", "POST", "/v1/tag", JSON, b'{"texts": [["a"]]}', 422, "invalid_request"),
    ("scores as a string", "POST", "/v1/tag", JSON, b'{"texts": ["a"], "scores": "yes"}', 422, "invalid_request"),
    ("top_k negative", "POST", "/v1/tag", JSON, b'{"texts": ["a"], "top_k": -1}', 422, "invalid_request"),
    ("top_k a float", "POST", "/v1/tag", JSON, b'{"texts": ["a"], "top_k": 1.5}', 422, "invalid_request"),
    ("top_k over the limit", "POST", "/v1/tag", JSON, b'{"texts": ["a"], "top_k": 4}', 422, "top_k_too_large"),
    (
        "an answer too large",
        "POST",
        "/v1/tag",
        JSON,
        ('{"top_k": 3, "sentences": [[' + ",".join(['"a"'] * 16) + "]]}").encode(),
        422,
        "response_too_large",
    ),
    ("an empty sentence", "POST", "/v1/tag", JSON, b'{"sentences": [[]]}', 422, "empty_sentence"),
    ("an empty token", "POST", "/v1/tag", JSON, b'{"sentences": [["a", ""]]}', 422, "empty_token"),
    ("a blank token", "POST", "/v1/tag", JSON, b'{"sentences": [["a", " \\t "]]}', 422, "empty_token"),
    (
        "too many sentences",
        "POST",
        "/v1/tag",
        JSON,
        ('{"sentences": [' + ",".join([A_TOKEN] * 5) + "]}").encode(),
        422,
        "too_many_items",
    ),
    (
        "too many tokens in a sentence",
        "POST",
        "/v1/tag",
        JSON,
        ('{"sentences": [[' + ",".join(['"a"'] * 21) + "]]}").encode(),
        422,
        "too_many_tokens",
    ),
    (
        "too many tokens in a request",
        "POST",
        "/v1/tag",
        JSON,
        ('{"sentences": [' + ",".join(["[" + ",".join(['"a"'] * 15) + "]"] * 3) + "]}").encode(),
        422,
        "too_many_tokens",
    ),
    (
        "a token too long",
        "POST",
        "/v1/tag",
        JSON,
        b'{"sentences": [["' + b"a" * 16 + b'"]]}',
        422,
        "too_many_characters",
    ),
    ("a text too long", "POST", "/v1/tag", JSON, b'{"texts": ["' + b"a " * 101 + b'"]}', 422, "too_many_characters"),
    (
        "a lone high surrogate in a token",
        "POST",
        "/v1/tag",
        JSON,
        b'{"sentences": [["\\ud800"]]}',
        422,
        "invalid_unicode",
    ),
    ("a lone low surrogate in a text", "POST", "/v1/tag", JSON, b'{"texts": ["x \\udfff y"]}', 422, "invalid_unicode"),
    ("an unknown model", "POST", "/v1/models/nope/tag", JSON, b'{"texts": ["a"]}', 404, "unknown_model"),
    ("an unknown model's info", "GET", "/v1/models/nope", {}, None, 404, "unknown_model"),
    ("POST to a GET route", "POST", "/livez", {}, b"{}", 405, "method_not_allowed"),
    ("POST to /metrics without a content type", "POST", "/metrics", {}, b"x", 405, "method_not_allowed"),
    ("POST to an unknown path", "POST", "/v3/anything", {}, b"{}", 404, "not_found"),  # /v2 answers OIP errors
    ("GET a POST route", "GET", "/v1/tag", {}, None, 405, "method_not_allowed"),
    ("DELETE a model", "DELETE", "/v1/models/tiny", {}, None, 405, "method_not_allowed"),
    ("path traversal", "GET", "/v1/models/..%2F..%2Fetc%2Fpasswd", {}, None, 404, "not_found"),
]


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    settings = Settings(models=models_dir, default_model="tiny", **LIMITS)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def test_the_catalogue_is_large_enough() -> None:
    assert len(CATALOGUE) >= 40 and len({case[0] for case in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "reason"), [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE]
)
def test_each_hostile_request_gets_its_own_clear_refusal(
    client: TestClient, method: str, path: str, headers: dict[str, str], body: bytes | None, status: int, reason: str
) -> None:
    before = client.get("/metrics").text
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["reason"] == reason and error["message"]
    counted = f'tagger_rejections_total{{reason="{reason}"}}'
    assert counted in client.get("/metrics").text, f"{reason} not counted"
    assert _count(client.get("/metrics").text, counted) == _count(before, counted) + 1
    # and the next request is served as if nothing happened
    assert client.post("/v1/tag", json={"sentences": [["The", "cat"]]}).status_code == 200


def _count(metrics: str, series: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0
