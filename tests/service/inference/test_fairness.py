"""One heavy request never holds a model away from the others, and one that cannot finish is refused at once.

Against a real `tagger serve` on the shipped en-ner (the slowest model): a
request at the documented limits runs beside a stream of one-sentence
requests, whose latency must stay near what it is on an idle server.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.helpers import free_port, post, start_server, wait_ready

pytestmark = pytest.mark.server
SMALL = {"sentences": [["Angela", "Merkel", "visited", "Paris", "on", "Monday", "."]]}


@pytest.fixture(scope="module")
def en_ner() -> Iterator[str]:
    port = free_port()
    process: subprocess.Popen[str] = start_server(ROOT / "exports", port, TAGGER_DEFAULT_MODEL="en-ner")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, seconds=120)
        yield base
    finally:
        process.kill()
        process.wait(10)


def latencies(base: str, seconds: float) -> list[float]:
    out = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.perf_counter()
        status, _ = post(f"{base}/v1/models/en-ner/tag", SMALL)
        assert status == 200
        out.append(time.perf_counter() - started)
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def limits_of(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/v1/models/en-ner", timeout=10) as response:
        return dict(json.loads(response.read())["limits"])


def test_small_requests_stay_fast_beside_a_request_at_the_documented_limits(en_ner: str) -> None:
    limits = limits_of(en_ner)
    per_sentence = limits["max_tokens"]
    sentences = min(limits["max_sentences"], limits["max_request_tokens"] // per_sentence)
    big = {"sentences": [["Paris"] * per_sentence] * sentences}  # the most a request may hold
    idle = latencies(en_ner, 3.0)
    answers: list[int] = []

    def heavy() -> None:
        for _ in range(3):
            answers.append(post(f"{en_ner}/v1/models/en-ner/tag", big)[0])

    thread = threading.Thread(target=heavy)
    thread.start()
    time.sleep(0.2)
    busy = latencies(en_ner, 4.0)
    thread.join(120)
    print(
        f"\nsmall en-ner requests: p99 {1000 * p99(idle):.1f} ms idle, {1000 * p99(busy):.1f} ms beside a "
        f"{sentences} x {per_sentence}-token request (medians {1000 * statistics.median(idle):.1f} / "
        f"{1000 * statistics.median(busy):.1f} ms)"
    )
    assert answers == [200, 200, 200]  # the documented limits are ones the model serves within its deadline
    # measured here: 6.9 ms idle, 57.5 ms busy (8.3x): the floor is the one 512-token sentence in flight
    # (about 50 ms of en-ner); the idle figure is taken as 5 ms at least, so a faster machine's tiny
    # denominator does not fail a server that behaves
    assert p99(busy) < 10 * max(p99(idle), 0.005)


def test_a_request_that_cannot_finish_in_time_is_refused_at_once(en_ner: str) -> None:
    limits = limits_of(en_ner)
    port = free_port()
    # the same model with a deadline far too short for a request at the limits
    process = start_server(ROOT / "exports", port, TAGGER_DEFAULT_MODEL="en-ner", TAGGER_REQUEST_TIMEOUT_S="0.2")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, seconds=120)
        big = {"sentences": [["word"] * limits["max_tokens"]] * (limits["max_request_tokens"] // limits["max_tokens"])}
        started = time.perf_counter()
        status, body = post(f"{base}/v1/models/en-ner/tag", big)
        elapsed = time.perf_counter() - started
        error = json.loads(body)["error"]
        assert status == 422 and error["reason"] == "request_too_slow", error
        assert "TAGGER_REQUEST_TIMEOUT_S" in error["message"] and elapsed < 0.1
        assert post(f"{base}/v1/models/en-ner/tag", SMALL)[0] == 200
    finally:
        process.kill()
        process.wait(10)


def test_health_probes_answer_within_their_timeout_beside_the_largest_answer(en_ner: str) -> None:
    limits = limits_of(en_ner)
    top_k = limits["max_response_values"] // limits["max_request_tokens"] - 1  # the largest answer allowed
    per_sentence = limits["max_tokens"]
    sentences = limits["max_request_tokens"] // per_sentence
    body = {"sentences": [["Paris"] * per_sentence] * sentences, "scores": True, "top_k": top_k}
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(post(f"{en_ner}/v1/models/en-ner/tag", body)[0]))
    thread.start()
    probes = []
    while thread.is_alive():
        started = time.perf_counter()
        with urllib.request.urlopen(f"{en_ner}/livez", timeout=5) as response:
            assert response.status == 200
        probes.append(time.perf_counter() - started)
        time.sleep(0.02)
    thread.join()
    worst = 1000 * max(probes)
    print(f"\n/livez beside a {sentences} x {per_sentence}-token answer with top_k {top_k}: worst {worst:.0f} ms")
    assert answers == [200] and max(probes) < 1.0  # the Kubernetes probes' timeout is 3 s; this is well within
