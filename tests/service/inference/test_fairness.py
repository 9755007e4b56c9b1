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


def timed(url: str, body: dict) -> float:
    started = time.perf_counter()
    assert post(url, body)[0] == 200
    return time.perf_counter() - started


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
    long_one = {"sentences": [["Paris"] * per_sentence]}  # the one batch in flight a small request may wait for
    batch = statistics.median(timed(f"{en_ner}/v1/models/en-ner/tag", long_one) for _ in range(5))
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
    # measured here: 4.4 ms idle, 51.8 ms busy: the floor is the one 512-token sentence in flight (about 50 ms
    # of en-ner, timed alone as `batch`), so the bound allows twice that; with batches oldest-first 3,458 ms
    assert p99(busy) < max(10 * p99(idle), 2 * batch), (p99(busy), p99(idle), batch)


def test_small_requests_queued_behind_a_request_at_the_limits_wait_for_one_batch_not_for_it(en_ner: str) -> None:
    """Four clients send small requests while one at the documented limits runs: each small one that arrives
    behind it must be answered long before it is (fair turns), not after its last sentence (oldest-first)."""
    limits = limits_of(en_ner)
    per_sentence = limits["max_tokens"]
    sentences = min(limits["max_sentences"], limits["max_request_tokens"] // per_sentence)
    big = {"sentences": [["Paris"] * per_sentence] * sentences}
    post(f"{en_ner}/v1/models/en-ner/tag", big)  # warm: the first run of the longest shape is slower
    spans: list[tuple[float, float]] = []  # (sent, answered) of each big request
    small: list[tuple[float, float]] = []
    done = threading.Event()

    def heavy() -> None:
        for _ in range(3):
            sent = time.perf_counter()
            assert post(f"{en_ner}/v1/models/en-ner/tag", big)[0] == 200
            spans.append((sent, time.perf_counter()))
            time.sleep(0.3)
        done.set()

    def light() -> None:
        while not done.is_set():
            sent = time.perf_counter()
            assert post(f"{en_ner}/v1/models/en-ner/tag", SMALL)[0] == 200
            small.append((sent, time.perf_counter()))

    threads = [threading.Thread(target=heavy)] + [threading.Thread(target=light) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    behind = [end - sent for sent, end in small for a, b in spans if a < sent < b]  # sent while a big one ran
    big_s = statistics.median(b - a for a, b in spans)
    worst = max(behind)
    print(
        f"\n{len(behind)} small requests behind a {sentences} x {per_sentence}-token one ({1000 * big_s:.0f} ms): "
        f"worst {1000 * worst:.0f} ms, median {1000 * statistics.median(behind):.0f} ms"
    )
    assert len(behind) >= 4
    # measured here: worst 212 ms beside 3,982 ms; with oldest-first batches (fairness off) 3,804 ms beside 3,430
    assert worst < big_s / 3


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


def test_requests_the_queued_work_would_keep_past_their_deadline_are_refused_at_once() -> None:
    """Admission counts the work queued in the inference process: 24 requests at once, each well within the
    deadline alone but together past it (even at twice the speed measured), get 200s and fast 503 `overloaded`s,
    not 504s after waiting."""
    port = free_port()
    process = start_server(ROOT / "exports", port, TAGGER_DEFAULT_MODEL="en-ner", TAGGER_REQUEST_TIMEOUT_S="2")
    base = f"http://127.0.0.1:{port}"
    body = {"sentences": [["Paris"] * 512] * 4}  # 2,048 tokens: about 0.4 s of en-ner alone
    answers: list[tuple[int, str, float]] = []
    lock = threading.Lock()

    def one() -> None:
        started = time.perf_counter()
        status, raw = post(f"{base}/v1/models/en-ner/tag", body)
        reason = json.loads(raw)["error"]["reason"] if status != 200 else ""
        with lock:
            answers.append((status, reason, time.perf_counter() - started))

    try:
        wait_ready(base, process, seconds=120)
        for _ in range(3):  # the speed admission reads, measured on this shape (warm-up measures short ones)
            assert post(f"{base}/v1/models/en-ner/tag", body)[0] == 200
        threads = [threading.Thread(target=one) for _ in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        process.kill()
        process.wait(10)
    overloaded = [seconds for status, reason, seconds in answers if (status, reason) == (503, "overloaded")]
    print(
        f"\n24 requests at once: {sorted((s, r) for s, r, _ in answers)}; overloaded refused in at most "
        f"{1000 * max(overloaded, default=0):.0f} ms"
    )
    assert len(answers) == 24 and overloaded, answers  # without the queued work counted: all admitted, then 504s
    # the admitted share the model in turns and finish together, so a speed estimate a little optimistic (a busy
    # machine) can make them all 504: refusals are checked here, not that every admitted one makes it
    assert {status for status, _, _ in answers} <= {200, 503, 504}, answers
    assert max(overloaded) < 0.5


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
