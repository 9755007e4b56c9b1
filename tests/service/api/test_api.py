"""The HTTP API as a client sees it: tagging, model information, health, and every refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.trains

LIMITS = {"max_sentences": 4, "max_tokens": 20, "max_token_chars": 15, "max_text_chars": 200, "max_body_bytes": 4096}


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    settings = Settings(models=models_dir, default_model="tiny", max_batch_tokens=64, **LIMITS)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def tag(client: TestClient, body: Any, **kwargs: Any) -> Any:
    return client.post("/v1/models/tiny/tag", json=body, **kwargs)


def test_tag_pretokenized_sentences(client: TestClient) -> None:
    response = tag(client, {"sentences": [["The", "cat", "sat", "."], ["Hello"]]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "tiny" and len(body["version"]) == 12
    first, second = body["results"]
    assert first["tokens"] == ["The", "cat", "sat", "."] and len(first["tags"]) == 4
    assert second["tokens"] == ["Hello"] and len(second["tags"]) == 1
    assert "scores" not in first and "top_k" not in first and "offsets" not in first


def test_scores_and_top_k(client: TestClient) -> None:
    (result,) = tag(client, {"sentences": [["The", "cat"]], "scores": True, "top_k": 3}).json()["results"]
    assert all(0.0 < p <= 1.0 for p in result["scores"])
    for tag_name, best, score in zip(result["tags"], result["top_k"], result["scores"], strict=True):
        assert len(best) == 3 and best[0]["tag"] == tag_name
        assert best[0]["probability"] == pytest.approx(score, abs=1e-6)
        assert best[0]["probability"] >= best[1]["probability"] >= best[2]["probability"]


def test_texts_are_tokenized_with_offsets(client: TestClient) -> None:
    text = "I don't like  green eggs."
    (result,) = tag(client, {"texts": [text]}).json()["results"]
    assert result["tokens"] == ["I", "do", "n't", "like", "green", "eggs", "."]
    assert [text[s:e] for s, e in result["offsets"]] == result["tokens"]


def test_default_model_route(client: TestClient) -> None:
    response = client.post("/v1/tag", json={"sentences": [["Hi"]]})
    assert response.status_code == 200 and response.json()["model"] == "tiny"


def test_results_do_not_depend_on_the_rest_of_the_request(client: TestClient) -> None:
    alone = tag(client, {"sentences": [["The", "cat", "sat"]], "scores": True}).json()["results"][0]
    mixed = tag(client, {"sentences": [["A"] * 19, ["The", "cat", "sat"], ["x"]], "scores": True}).json()["results"][1]
    assert mixed["tags"] == alone["tags"]
    assert mixed["scores"] == pytest.approx(alone["scores"], abs=1e-5)


def test_model_listing_and_details(client: TestClient) -> None:
    listing = client.get("/v1/models").json()
    assert listing["default"] == "tiny" and [m["name"] for m in listing["models"]] == ["tiny"]
    info = client.get("/v1/models/tiny").json()
    assert info["task"] == "upos" and info["scheme"] is None and "NOUN" in info["tags"]
    assert len(info["sha256"]) == 64 and info["limits"]["max_tokens"] == 20
    assert set(info["scores"]) == {"dev", "test"} and "accuracy" in info["scores"]["dev"]


def test_health(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready", "models": ["tiny"]}


def metric(client: TestClient, prefix: str) -> float:
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_metrics_move_with_traffic(client: TestClient) -> None:
    route = 'tagger_requests_total{model="tiny",route="/v1/models/{model}/tag",status="200"}'
    before = {p: metric(client, p) for p in (route, "tagger_tokens_total", "tagger_batch_sentences_count")}
    tag(client, {"sentences": [["a", "b", "c"], ["d"]]})
    assert metric(client, route) == before[route] + 1
    assert metric(client, "tagger_tokens_total") == before["tagger_tokens_total"] + 4
    assert metric(client, "tagger_batch_sentences_count") > before["tagger_batch_sentences_count"]
    text = client.get("/metrics").text
    for name in (
        "tagger_request_seconds_bucket",
        "tagger_queue_wait_seconds",
        "tagger_inference_seconds",
        "tagger_sentence_seconds",
        "tagger_batch_tokens",
        "tagger_batch_padding_ratio",
        "tagger_queue_depth",
        "tagger_sentences_total",
        'tagger_model_info{model="tiny"',
        "process_cpu_seconds_total",
        "python_info",
    ):
        assert name in text, name


@pytest.mark.parametrize(
    ("body", "status", "reason", "field", "words"),
    [
        ({"sentences": []}, 422, "invalid_request", "sentences", "at least 1"),
        ({"sentences": [[]]}, 422, "empty_sentence", "sentences[0]", "no tokens"),
        ({"sentences": [["a", ""]]}, 422, "empty_token", "sentences[0][1]", "empty"),
        ({"sentences": [["a", "  "]]}, 422, "empty_token", "sentences[0][1]", "blank"),
        ({"sentences": [["a", 3]]}, 422, "invalid_request", "sentences[0][1]", "valid string"),
        ({"sentences": "The cat"}, 422, "invalid_request", "sentences", "valid list"),
        ({"sentences": [["a"]], "scores": "yes"}, 422, "invalid_request", "scores", "valid boolean"),
        ({"sentences": [["a"]], "top_k": -1}, 422, "invalid_request", "top_k", "greater than or equal to 0"),
        ({"sentences": [["a"]], "top_k": 11}, 422, "top_k_too_large", "top_k", "limit is 10"),
        ({"sentences": [["a"]], "colour": 1}, 422, "invalid_request", "colour", "unknown field"),
        ({"sentences": [["a"]], "texts": ["a"]}, 422, "invalid_request", "body", "exactly one"),
        ({}, 422, "invalid_request", "body", "exactly one"),
        ({"sentences": [["a"]] * 5}, 422, "too_many_items", "sentences", "has 5 items; the limit is 4"),
        ({"sentences": [["a"] * 21]}, 422, "too_many_tokens", "sentences[0]", "21 tokens; the limit is 20"),
        ({"sentences": [["a" * 16]]}, 422, "too_many_characters", "sentences[0][0]", "16 characters; the limit is 15"),
        ({"texts": ["a" * 201]}, 422, "too_many_characters", "texts[0]", "TAGGER_MAX_TEXT_CHARS"),
        ({"texts": ["x " * 21]}, 422, "too_many_tokens", "texts[0]", "21 tokens"),
        ([["a"]], 422, "invalid_request", "body", "valid dictionary"),
    ],
)
def test_bad_requests_are_refused_with_the_field_named(
    client: TestClient, body: Any, status: int, reason: str, field: str, words: str
) -> None:
    response = tag(client, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["reason"] == reason and error.get("field", "body") == field
    assert words in error["message"]


def test_unknown_model_is_404(client: TestClient) -> None:
    response = client.post("/v1/models/klingon/tag", json={"sentences": [["a"]]})
    assert response.status_code == 404
    assert "klingon" in response.json()["error"]["message"] and "tiny" in response.json()["error"]["message"]
    assert client.get("/v1/models/klingon").status_code == 404


def test_invalid_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/tag", content=b'{"sentences": [["a"]', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["reason"] == "invalid_json"


def test_invalid_utf8_is_400(client: TestClient) -> None:
    body = b'{"sentences": [["caf\xe9"]]}'
    response = client.post("/v1/tag", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]["message"]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    response = client.post("/v1/tag", content=b"The cat", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["error"]["message"]


def test_large_body_is_413(client: TestClient) -> None:
    response = tag(client, {"sentences": [["a"]], "texts": ["x" * 5000]})
    assert response.status_code == 413 and "TAGGER_MAX_BODY_BYTES" in response.json()["error"]["message"]


def test_refusals_are_counted_by_reason(client: TestClient) -> None:
    before = metric(client, 'tagger_rejections_total{reason="body_too_large"}')
    tag(client, {"texts": ["x" * 5000]})
    assert metric(client, 'tagger_rejections_total{reason="body_too_large"}') == before + 1
    assert metric(client, 'tagger_requests_total{model="tiny",route="/v1/models/{model}/tag",status="413"}') >= 1, (
        client.get("/metrics").text
    )


def test_openapi_docs_describe_the_tag_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/v1/models/{model}/tag" in schema["paths"] and client.get("/docs").status_code == 200


def test_a_request_id_is_echoed_and_named_in_errors(client: TestClient) -> None:
    given = tag(client, {"sentences": [["Hi"]]}, headers={"x-request-id": "client-42"})
    assert given.headers["x-request-id"] == "client-42"
    made = tag(client, {"sentences": [["Hi"]]})
    assert len(made.headers["x-request-id"]) == 32  # one made for it
    refused = tag(client, {"sentences": [[]]}, headers={"x-request-id": "client-43"})
    assert refused.status_code == 422 and refused.json()["error"]["request_id"] == "client-43"
    assert refused.headers["x-request-id"] == "client-43"
    odd = tag(client, {"sentences": [["Hi"]]}, headers={"x-request-id": "a b\tc" * 40})  # not a sane id: replaced
    assert odd.headers["x-request-id"] != "a b\tc" * 40 and len(odd.headers["x-request-id"]) == 32
    before_routing = client.post("/v1/tag", content=b"x", headers={"x-request-id": "client-44"})
    assert before_routing.status_code == 415 and before_routing.json()["error"]["request_id"] == "client-44"


def test_a_blank_text_gets_an_empty_result_in_its_place(client: TestClient) -> None:
    response = tag(client, {"texts": ["Fine.", "", "   ", "Also fine."], "scores": True, "top_k": 2})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["tokens"] for r in results] == [["Fine", "."], [], [], ["Also", "fine", "."]]
    assert results[1] == {"tokens": [], "tags": [], "scores": [], "top_k": [], "offsets": []}
    only_blank = tag(client, {"texts": [""]})
    assert only_blank.status_code == 200 and only_blank.json()["results"] == [{"tokens": [], "tags": [], "offsets": []}]
    empty_sentence = tag(client, {"sentences": [["ok"], []]})  # a sentence is given as tokens: none is an error
    assert empty_sentence.status_code == 422 and empty_sentence.json()["error"]["reason"] == "empty_sentence"
