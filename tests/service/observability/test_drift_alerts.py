"""Drift alerts for real: Debian's Prometheus scrapes two `tagger serve` replicas while text is replayed at both.

The shipped rules (deploy/prometheus/alerts.yml, group tagger-drift) run with their windows shortened from 15
minutes to 10 seconds and their `for` from 10 minutes to 2 seconds; the expressions and thresholds are the shipped
ones. In-domain text (UNER-EWT dev, the text of en-ner's reference) fires nothing; each shift fires its alert
within a bounded time: social media (WNUT-17), the same text lower-cased and upper-cased, and the text in another
script (Latin letters transliterated to Cyrillic). Between shifts, in-domain text runs until no drift alert is left.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from tests.conftest import DATA, ROOT, need
from tests.helpers import free_port, get, post, running_prometheus, wait_ready

pytestmark = [pytest.mark.server, pytest.mark.data]
DRIFT_ALERTS = {"TaggerInputDrift", "TaggerPredictionDrift", "TaggerLowConfidence"}
_CYRILLIC = "абцдефгхийклмнопкрстуввжыз"
CYRILLIC = str.maketrans("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", _CYRILLIC + _CYRILLIC.upper())
PHASE_S = 60.0  # the most a shift may take to fire (or in-domain text to clear it)


def sentences(path: Path, limit: int = 400) -> list[list[str]]:
    from tagger.readers import read_corpus

    return [s.tokens for s in read_corpus(need(path))[:limit] if s.tokens]


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[str]]:
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--models", str(ROOT / "exports"), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_ready(f"http://127.0.0.1:{port}", process, seconds=120)  # type: ignore[arg-type]
        yield [f"127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def fast_rules(folder: Path) -> None:
    """The shipped drift rules with short windows: what changes is time, never an expression or a threshold."""
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
    (drift,) = [g for g in groups if g["name"] == "tagger-drift"]
    for rule in drift["rules"]:
        rule["expr"] = rule["expr"].replace("[15m]", "[10s]")
        if "for" in rule:
            assert rule["for"] == "10m"
            rule["for"] = "2s"
    (folder / "drift.yml").write_text(yaml.safe_dump({"groups": [drift]}))


@pytest.fixture(scope="module")
def prometheus(replicas: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prometheus")
    fast_rules(folder)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["drift.yml"],
        "scrape_configs": [{"job_name": "tagger", "static_configs": [{"targets": replicas}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    with running_prometheus(folder) as base:
        yield base


def until(check: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(0.5)


def firing(base: str) -> set[tuple[str, str]]:
    """(alert, model) of every drift alert firing now."""
    status, body = get(f"{base}/api/v1/alerts")
    assert status == 200
    alerts = json.loads(body)["data"]["alerts"]
    return {(a["labels"]["alertname"], a["labels"]["model"]) for a in alerts if a["state"] == "firing"}


def pending_or_firing(base: str) -> set[str]:
    status, body = get(f"{base}/api/v1/alerts")
    assert status == 200
    return {a["labels"]["alertname"] for a in json.loads(body)["data"]["alerts"]} & DRIFT_ALERTS


def query(base: str, expr: str) -> dict[str, float]:
    status, body = get(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}")
    assert status == 200
    return {r["metric"].get("model", ""): float(r["value"][1]) for r in json.loads(body)["data"]["result"]}


class Replay:
    """Clients posting sentences to both models of every replica, 8 a request, until stopped; text swapped live."""

    def __init__(self, replicas: Sequence[str], text: list[list[str]]) -> None:
        self.text, self.stop, self.sent = text, threading.Event(), 0
        self.threads = [threading.Thread(target=self.run, args=(r,), daemon=True) for r in replicas]
        for thread in self.threads:
            thread.start()

    def run(self, replica: str) -> None:
        at = 0
        while not self.stop.is_set():
            text = self.text
            batch = [text[(at + i) % len(text)] for i in range(8)]
            at += 8
            for model in ("en-ner", "en-upos"):
                status, _ = post(f"http://{replica}/v1/models/{model}/tag", {"sentences": batch})
                assert status == 200
                self.sent += 1
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_in_domain_text_fires_nothing_and_each_shift_fires_its_alert(prometheus: str, replicas: list[str]) -> None:
    uner = sentences(DATA / "uner-english-ewt" / "en_ewt-ud-dev.iob2")
    shifts = {
        "social media (WNUT-17)": (sentences(DATA / "wnut17" / "test.conll"), {("TaggerInputDrift", "en-ner")}),
        "lower-cased": ([[t.lower() for t in s] for s in uner], {("TaggerInputDrift", "en-ner")}),
        "upper-cased": ([[t.upper() for t in s] for s in uner], {("TaggerInputDrift", "en-upos")}),
        "another script": (
            [[t.translate(CYRILLIC) for t in s] for s in uner],
            {("TaggerInputDrift", "en-ner"), ("TaggerPredictionDrift", "en-upos")},
        ),
    }
    replay = Replay(replicas, uner)
    try:
        # in domain: the rules see traffic from both replicas, and no drift alert even starts pending
        until(lambda: query(prometheus, "model:tagger_drift_tokens:rate15m").get("en-ner", 0) > 1, PHASE_S, "no rate")
        tokens = query(prometheus, 'sum by (model) (rate(tagger_drift_tokens_total{model="en-ner"}[10s]))')
        by_replica = query(prometheus, 'count by (model) (tagger_drift_tokens_total{model="en-ner"})')
        assert by_replica["en-ner"] == 2 and tokens["en-ner"] > 1, (by_replica, tokens)
        quiet_until = time.monotonic() + 25
        while time.monotonic() < quiet_until:
            assert not pending_or_firing(prometheus), f"in-domain text: {pending_or_firing(prometheus)}"
            time.sleep(1)
        for name, (text, expected) in shifts.items():
            replay.text = text
            until(lambda e=expected: e <= firing(prometheus), PHASE_S, f"{name}: {expected} did not fire")
            replay.text = uner
            until(lambda: not pending_or_firing(prometheus), PHASE_S, f"{name}: alerts did not clear in domain")
    finally:
        replay.close()
    assert replay.sent > 0
