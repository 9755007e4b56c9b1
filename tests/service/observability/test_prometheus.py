"""A real Prometheus (Debian's) scrapes a live `tagger serve` with the project's scrape config.

Known traffic goes in; Prometheus's HTTP API must report the target up and
exactly that traffic in the request, token and batch metrics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers import free_port, get, post, running_prometheus, wait_ready

pytestmark = pytest.mark.server
SENTENCES = [["The", "cat", "sat", "."], ["Hello", "world"], ["Prometheus", "scrapes", "every", "replica", "."]]
REQUESTS = 7  # each with all three sentences: 21 sentences, 77 tokens


@pytest.fixture(scope="module")
def tagger() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--models", str(ROOT / "exports"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, seconds=120)  # type: ignore[arg-type]
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def prometheus(tagger: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus with deploy/prometheus/prometheus.yml, its target pointed at the live tagger, scraping each second."""
    folder = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "tagger" and job["metrics_path"] == "/metrics"
    del job["dns_sd_configs"]  # Docker's DNS names the replicas in compose; here there is one, on loopback
    job["static_configs"] = [{"targets": [tagger]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yml", folder / "alerts.yml")
    with running_prometheus(folder) as base:
        yield base


def query(base: str, expr: str) -> list[dict[str, Any]]:
    status, body = get(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}")
    assert status == 200, body
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def value(base: str, expr: str) -> float | None:
    result = query(base, expr)
    return float(result[0]["value"][1]) if result else None


def eventually(base: str, expr: str, expected: float, seconds: float = 30) -> None:
    deadline, seen = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        seen = value(base, expr)
        if seen == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{expr} = {seen}, expected {expected}")


def test_prometheus_sees_the_target_up_and_the_traffic_sent(tagger: str, prometheus: str) -> None:
    eventually(prometheus, 'up{job="tagger"}', 1.0)
    for _ in range(REQUESTS):
        status, _ = post(f"http://{tagger}/v1/models/en-upos/tag", {"sentences": SENTENCES})
        assert status == 200
    tokens = REQUESTS * sum(len(s) for s in SENTENCES)
    route = 'route="/v1/models/{model}/tag",model="en-upos",status="200"'
    eventually(prometheus, f"sum(tagger_requests_total{{{route}}})", REQUESTS)
    eventually(prometheus, 'sum(tagger_tokens_total{model="en-upos"})', tokens)
    eventually(prometheus, 'sum(tagger_sentences_total{model="en-upos"})', REQUESTS * len(SENTENCES))
    # every sentence went through a batch, and the warm-up ran none through the metrics
    eventually(prometheus, 'sum(tagger_batch_sentences_sum{model="en-upos"})', REQUESTS * len(SENTENCES))
    batches = value(prometheus, 'sum(tagger_batch_sentences_count{model="en-upos"})')
    assert batches is not None and 1 <= batches <= REQUESTS * len(SENTENCES)
    eventually(prometheus, f"sum(tagger_request_seconds_count{{{route}}})", REQUESTS)
    assert value(prometheus, 'tagger_model_info{model="en-upos"}') == 1.0
