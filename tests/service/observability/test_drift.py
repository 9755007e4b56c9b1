"""Drift statistics counted live on the shipped models: exact counts for known requests, in both inference modes
(production's first), the reference beside them, GET /v1/models/{model}/drift, and TAGGER_DRIFT=false."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.conftest import ROOT
from tests.helpers import ready_client, until

# 2 sentences, 9 tokens: "Ada" title; "lovelace" lower; "LONDON" upper; "zzqxj" unknown to any vocabulary
SENTENCES = [["Ada", "lovelace", "lived", "in", "LONDON", "."], ["zzqxj", "Москва", "!"]]


@pytest.fixture(scope="module", params=[True, False], ids=["inference process", "in process"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    settings = Settings(models=ROOT / "exports", inference_process=request.param, warmup=False)
    client = ready_client(settings, seconds=120)
    yield client
    client.__exit__(None, None, None)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels}")


def drift_of(client: TestClient, model: str) -> dict:
    response = client.get(f"/v1/models/{model}/drift")
    assert response.status_code == 200
    return response.json()


def test_a_request_is_counted_by_case_script_and_unknown_words_and_its_tags(client: TestClient) -> None:
    before = drift_of(client, "en-ner")["since_start"]
    assert client.post("/v1/models/en-ner/tag", json={"sentences": SENTENCES}).status_code == 200
    # the outputs are counted in the inference process and arrive within half a second
    until(lambda: drift_of(client, "en-ner")["since_start"]["tokens"] >= before["tokens"] + 9, 10)
    until(lambda: sum(_tags(client)) >= sum(_tags(client, before)) + 9, 10)
    text = client.get("/metrics").text
    version = drift_of(client, "en-ner")["version"]
    at = {"model": "en-ner", "version": version}
    assert sample(text, "tagger_drift_tokens_total", **at) == before["tokens"] + 9
    assert sample(text, "tagger_drift_tokens_by_case_total", case="upper", **at) >= 1  # LONDON
    assert sample(text, "tagger_drift_tokens_by_script_total", script="Cyrillic", **at) >= 1  # Москва
    assert sample(text, "tagger_drift_unknown_tokens_total", **at) >= 1  # zzqxj
    assert sample(text, "tagger_drift_tag_probability_bucket", le="+Inf", **at) == sum(_tags(client))
    assert sample(text, "tagger_drift_sentence_tokens_bucket", le="+Inf", **at) == before["sentences"] + 2
    assert sample(text, "tagger_drift_reference_loaded", **at) == 1.0
    assert 0 < sample(text, "tagger_drift_reference_unknown_rate", **at) < 0.1


def _tags(client: TestClient, figures: dict | None = None) -> list[float]:
    figures = figures or drift_of(client, "en-ner")["since_start"]
    return [figures["tokens"] * share for share in figures["tag_shares"].values()] if figures["tokens"] else [0.0]


def test_the_drift_route_compares_live_figures_with_the_reference(client: TestClient) -> None:
    lowered = [[t.lower() for t in s] for s in SENTENCES * 20]
    assert client.post("/v1/models/en-upos/tag", json={"sentences": lowered}).status_code == 200
    until(lambda: drift_of(client, "en-upos")["since_start"]["tokens"] >= 180, 10)
    report = drift_of(client, "en-upos")
    assert report["reference"]["tokens"] > 20_000  # EWT dev
    assert report["reference"]["case_mix"]["title"] > 0.1
    live = report["since_start"]
    assert live["case_mix"]["title"] == 0.0 and live["case_mix"]["upper"] == 0.0
    assert live["against_reference"]["case_psi"] > 0.25  # what TaggerInputDrift fires on
    assert report["recent"]["tokens"] == live["tokens"] and report["recent"]["seconds"] >= 0


def test_drift_can_be_turned_off() -> None:
    settings = Settings(models=ROOT / "exports", inference_process=False, warmup=False, drift=False)
    client = ready_client(settings)
    try:
        assert client.post("/v1/models/en-ner/tag", json={"sentences": SENTENCES}).status_code == 200
        response = client.get("/v1/models/en-ner/drift")
        assert response.status_code == 404 and response.json()["error"]["reason"] == "drift_off"
        time.sleep(0.1)
        assert not re.search(r"^tagger_drift_", client.get("/metrics").text, re.M)
    finally:
        client.__exit__(None, None, None)
