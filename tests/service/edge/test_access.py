"""Opt-in access control: API keys on the /v1 routes, rate limits per key or address, docs and metrics off the
public port. Probes stay open; keys are never echoed or logged."""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.edge.access import KeysFileError, RateLimit, load_keys
from service.settings import Settings
from tests.helpers import free_port, start_server, wait_ready

pytestmark = pytest.mark.trains

RAW_KEY = "k-0123456789abcdef-raw"
HASHED_KEY = "k-fedcba9876543210-hashed"
BODY = {"sentences": [["The", "cat"]]}


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    digest = hashlib.sha256(HASHED_KEY.encode()).hexdigest()
    path.write_text(f"# tagger API keys\n{RAW_KEY}\n\nsha256:{digest}\n", encoding="utf-8")
    return path


def client_for(models_dir: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(models=models_dir, default_model="tiny", warmup=False, **settings)))


@pytest.fixture
def keyed(models_dir: Path, keys_file: Path) -> Iterator[TestClient]:
    with client_for(models_dir, api_keys_file=keys_file, inference_process=False) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_with_keys_every_v1_route_needs_one(keyed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for response in (
        keyed.post("/v1/tag", json=BODY),
        keyed.post("/v1/tag", json=BODY, headers=bearer("not-a-key-at-all-0000")),
        keyed.post("/v1/tag", json=BODY, headers={"authorization": f"Basic {RAW_KEY}"}),
        keyed.get("/v1/models"),
        keyed.get("/v1/models/tiny"),
    ):
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["reason"] == "unauthorized"
    assert keyed.post("/v1/tag", json=BODY, headers=bearer(RAW_KEY)).status_code == 200
    assert keyed.post("/v1/tag", json=BODY, headers=bearer(HASHED_KEY)).status_code == 200  # kept as its sha256
    assert keyed.get("/v1/models", headers=bearer(RAW_KEY)).status_code == 200
    for open_route in ("/livez", "/readyz", "/metrics"):
        assert keyed.get(open_route).status_code in (200, 503), open_route  # probes and scrapers carry no key
    assert RAW_KEY not in caplog.text and HASHED_KEY not in caplog.text
    assert 'tagger_rejections_total{reason="unauthorized"} 5.0' in keyed.get("/metrics").text


def test_a_keys_file_that_cannot_be_used_stops_start_up_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "keys"
    bad.write_text("short\n", encoding="utf-8")
    with pytest.raises(KeysFileError, match=r"keys:1: a key needs 16 characters"):
        load_keys(bad)
    bad.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(KeysFileError, match="no keys"):
        load_keys(bad)
    bad.write_text("sha256:1234\n", encoding="utf-8")
    with pytest.raises(KeysFileError, match=r"keys:1: a sha256: entry needs 64 hex digits"):
        load_keys(bad)
    with pytest.raises(KeysFileError, match="cannot read"):
        load_keys(tmp_path / "missing")


def test_the_rate_limit_is_per_key_and_says_when_to_retry(models_dir: Path, keys_file: Path) -> None:
    with client_for(models_dir, api_keys_file=keys_file, rate_limit=0.5, rate_burst=2, inference_process=False) as c:
        statuses = [c.post("/v1/tag", json=BODY, headers=bearer(RAW_KEY)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = c.post("/v1/tag", json=BODY, headers=bearer(RAW_KEY))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert (
            refused.json()["error"]["reason"] == "rate_limited"
            and "TAGGER_RATE_LIMIT" in refused.json()["error"]["message"]
        )
        assert c.post("/v1/tag", json=BODY, headers=bearer(HASHED_KEY)).status_code == 200  # its own bucket
        key_id = hashlib.sha256(RAW_KEY.encode()).hexdigest()[:8]
        metrics = c.get("/metrics").text
        assert f'tagger_rate_limited_total{{client="{key_id}"}} 2.0' in metrics and RAW_KEY not in metrics


def test_without_keys_the_rate_limit_is_per_address(models_dir: Path) -> None:
    with client_for(models_dir, rate_limit=1.0, rate_burst=1, inference_process=False) as c:
        assert [c.post("/v1/tag", json=BODY).status_code for _ in range(2)] == [200, 429]
        assert 'tagger_rate_limited_total{client="address"} 1.0' in c.get("/metrics").text


def test_token_buckets_refill_at_the_rate() -> None:
    limit = RateLimit(rate=2.0, burst=2)
    assert [limit.wait("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert limit.wait("a", 0.5) == 0.0 and limit.wait("b", 0.5) == 0.0


def test_docs_can_be_turned_off(models_dir: Path) -> None:
    with client_for(models_dir, docs=False, inference_process=False) as c:
        assert c.get("/docs").status_code == 404 and c.get("/openapi.json").status_code == 404
        assert c.post("/v1/tag", json=BODY).status_code == 200


@pytest.mark.server
def test_metrics_can_move_to_a_port_of_their_own(models_dir: Path) -> None:
    port, metrics_port = free_port(), free_port()
    process = start_server(models_dir, port, TAGGER_METRICS_PORT=str(metrics_port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{base}/metrics", timeout=10)
        assert caught.value.code == 404
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
                    assert b"tagger_requests_total" in response.read()
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        process.kill()
        process.wait(10)
