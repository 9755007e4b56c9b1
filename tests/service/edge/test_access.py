"""Opt-in access control: API keys on the /v1 routes, rate limits per key or address, docs and metrics off the
public port. Probes stay open; keys are never echoed or logged."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import shutil
import subprocess
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
from tests.conftest import ROOT
from tests.helpers import free_port, start_server, until, wait_ready

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


def statuses_from(base: str, source: str, forwarded: list[str | None], path: str = "/v1/tag") -> list[int]:
    """POST /v1/tag (or GET another `path`) once per entry from the local address `source`, each with that
    `X-Forwarded-For` (None: no header); the statuses in order."""
    host, port = base.removeprefix("http://").split(":")
    found = []
    for value in forwarded:
        connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
        headers = {"content-type": "application/json", "authorization": f"Bearer {CONTROL_TOKEN}"}
        if value is not None:
            headers["x-forwarded-for"] = value
        if path == "/v1/tag":
            connection.request("POST", path, json.dumps(BODY).encode(), headers)
        else:
            connection.request("GET", path, headers=headers)
        found.append(connection.getresponse().status)
        connection.close()
    return found


CONTROL_TOKEN = "control-0123456789abcdef"
# two requests at once, then one every 10 s: a test's requests never see a refill
LIMITED = {"TAGGER_RATE_LIMIT": "0.1", "TAGGER_RATE_BURST": "2", "TAGGER_CONTROL_TOKEN": CONTROL_TOKEN}


@contextlib.contextmanager
def limited_server(models_dir: Path, **env: str) -> Iterator[str]:
    port = free_port()
    process = start_server(models_dir, port, **LIMITED, **env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base
    finally:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def trusting(models_dir: Path) -> Iterator[str]:
    """A rate-limited `tagger serve` that trusts 127.0.0.1 (only) as a proxy. Each test sends from local
    addresses of its own (127.0.0.0/8 is all loopback), so each starts with full buckets."""
    with limited_server(models_dir, TAGGER_FORWARDED_ALLOW_IPS="127.0.0.1") as base:
        yield base


@pytest.mark.server
def test_by_default_no_client_chooses_its_address_with_x_forwarded_for(models_dir: Path) -> None:
    # the probe: uvicorn's own default trusts loopback as a proxy, so a new header value was a new bucket
    with limited_server(models_dir) as base:
        spoofed = [f"203.0.113.{i}" for i in range(6)]
        assert statuses_from(base, "127.0.0.1", spoofed) == [200, 200, 429, 429, 429, 429]


@pytest.mark.server
def test_a_trusted_proxy_names_the_client_and_anyone_else_is_not_believed(trusting: str) -> None:
    # from the trusted proxy: each named client has a bucket of its own, and one client is limited
    assert statuses_from(trusting, "127.0.0.1", [f"198.51.100.{i}" for i in range(4)]) == [200] * 4
    assert statuses_from(trusting, "127.0.0.1", ["198.51.100.99"] * 3) == [200, 200, 429]
    # the proxy's last hop counts, not what its client wrote before it (X-Forwarded-For: client-written, proxy-added)
    assert statuses_from(trusting, "127.0.0.1", [f"10.9.9.{i}, 198.51.100.98" for i in range(3)]) == [200, 200, 429]
    # from an address that is not a trusted proxy the header is ignored: one bucket, whatever it says
    assert statuses_from(trusting, "127.0.0.2", [f"198.51.100.{i}" for i in range(4)]) == [200, 200, 429, 429]


@pytest.mark.server
def test_model_control_is_rate_limited_too(trusting: str) -> None:
    # /v2/repository answers with the control token instead of a key, but each call is still a client's request
    assert statuses_from(trusting, "127.0.0.3", [None] * 3, path="/v2/repository/index") == [200, 200, 429]
    assert statuses_from(trusting, "127.0.0.3", [None], path="/v2/health/ready") == [200]  # probes stay open


def nginx_config(shipped: str, listen: int, upstream: int, folder: Path) -> str:
    """The shipped nginx.conf, pointed at a local tagger: its upstream, listen port and pid file replaced (Debian's
    nginx has no `resolve` on upstream servers, and there is no Docker DNS here); the proxying, as shipped."""
    temp = f"client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy;"
    replaced = {
        "resolver 127.0.0.11 valid=5s ipv6=off;": temp,
        "server tagger:8000 resolve;": f"server 127.0.0.1:{upstream};",
        "listen 8000;": f"listen 127.0.0.1:{listen};",
        "pid /var/run/nginx.pid;": f"pid {folder}/nginx.pid;",
    }
    for shipped_line, local in replaced.items():
        assert shipped_line in shipped, f"deploy/nginx/nginx.conf no longer has {shipped_line!r}: update this test"
        shipped = shipped.replace(shipped_line, local)
    return shipped


@pytest.mark.server
def test_behind_the_shipped_nginx_each_client_has_its_own_bucket_and_cannot_spoof_one(
    models_dir: Path, tmp_path: Path
) -> None:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    listen = free_port()
    # the tagger trusts nginx's address, as docker-compose.yml sets it (nginx reaches it from 127.0.0.1 here)
    with limited_server(models_dir, TAGGER_FORWARDED_ALLOW_IPS="127.0.0.1") as base:
        upstream = int(base.rsplit(":", 1)[1])
        tmp_path.chmod(0o755)  # nginx's workers drop root
        conf = tmp_path / "nginx.conf"
        conf.write_text(nginx_config((ROOT / "deploy/nginx/nginx.conf").read_text(), listen, upstream, tmp_path))
        command = [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log"), "-g", "daemon off;"]
        proxy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            front = f"http://127.0.0.1:{listen}"
            until(lambda: proxy.poll() is not None or get_status(f"{front}/livez") == 200, seconds=10)
            assert proxy.poll() is None, (tmp_path / "error.log").read_text()
            # a client that writes a new X-Forwarded-For each time is still one client: nginx replaces the header
            assert statuses_from(front, "127.0.0.5", [f"192.0.2.{i}" for i in range(4)]) == [200, 200, 429, 429]
            # and another client beside it is not limited by the first one's requests
            assert statuses_from(front, "127.0.0.6", [None, None, None]) == [200, 200, 429]
        finally:
            proxy.terminate()
            proxy.wait(10)


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings(forwarded_allow_ips="10.0.0.2, 172.28.0.0/24, ::1").forwarded_allow_ips
    with pytest.raises(ValueError, match="'nginx' is not an IP address or network"):
        Settings(forwarded_allow_ips="10.0.0.2,nginx")
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(forwarded_allow_ips="*")
