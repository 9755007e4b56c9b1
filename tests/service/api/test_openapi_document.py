"""The OpenAPI document states what the server enforces: one input of two, the limits it runs with, the media
types it answers in."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST

from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.trains


def test_the_request_schema_states_one_input_and_the_servers_own_limits(models_dir: Path) -> None:
    settings = Settings(models=models_dir, default_model="tiny", warmup=False, max_sentences=7, max_tokens=9)
    with TestClient(create_app(settings)) as client:
        schema = client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["TagRequest"]
    assert [branch["required"] for branch in request["oneOf"]] == [["sentences"], ["texts"], ["conllu"]]
    assert {"scores": {"const": False}, "top_k": {"const": 0}} in [b["properties"] for b in request["anyOf"]]
    sentences = next(b for b in request["properties"]["sentences"]["anyOf"] if b.get("type") == "array")
    assert sentences["maxItems"] == 7 and sentences["items"]["maxItems"] == 9
    assert sentences["items"]["items"]["maxLength"] == settings.max_token_chars
    assert request["properties"]["top_k"]["maximum"] == settings.max_top_k
    assert "TAGGER_MAX_REQUEST_TOKENS" in request["description"]
    paths = schema["paths"]
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == [CONTENT_TYPE_LATEST]


def test_a_whole_float_top_k_is_an_integer_as_json_schema_says(models_dir: Path) -> None:
    settings = Settings(models=models_dir, default_model="tiny", warmup=False, inference_process=False)
    with TestClient(create_app(settings)) as client:
        ok = client.post("/v1/tag", json={"sentences": [["a", "b"]], "top_k": 2.0})
        assert ok.status_code == 200 and len(ok.json()["results"][0]["top_k"][0]) == 2
        for bad in ("2", True, 2.5):
            assert client.post("/v1/tag", json={"sentences": [["a"]], "top_k": bad}).status_code == 422
