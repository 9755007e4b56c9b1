"""When the model cannot keep up: a full queue is 503, a late result 504, and a client that leaves costs no compute.

The model is held at a gate (its `tag` waits until the test opens it), so the
queue fills and deadlines pass on cue instead of by racing a real load. The
gate is a patch of this process, so these run the model in a thread of the
server (`inference_process=False`); tests/service/inference/test_inference_process.py holds an
inference process with SIGSTOP instead.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.pipeline import DISCONNECT_GRACE_S
from service.settings import Settings
from tagger.encoding import Batch
from tagger.runtime import Runtime
from tests.helpers import abandon_request, metrics, serving, until

pytestmark = [pytest.mark.trains, pytest.mark.server]


@dataclass
class Gate:
    """Holds every batch until opened; records what ran."""

    open: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)  # a batch is held at the gate
    ran: list[list[int]] = field(default_factory=list)  # each batch's sentence lengths


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()
    gate.open.set()
    original = Runtime.tag

    def held(self: Runtime, batch: Batch) -> Any:
        gate.waiting.set()
        assert gate.open.wait(30), "the test never opened the gate"
        gate.ran.append(batch.lengths.tolist())
        return original(self, batch)

    monkeypatch.setattr(Runtime, "tag", held)
    yield gate
    gate.open.set()


@pytest.fixture
def app_with(models_dir: Path, gate: Gate) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def start(**settings: Any) -> TestClient:
        config = Settings(models=models_dir, default_model="tiny", inference_process=False, **settings)
        client = TestClient(create_app(config))
        clients.append(client.__enter__())
        until(lambda: client.get("/readyz").status_code == 200)
        gate.ran.clear()  # warm-up batches
        gate.waiting.clear()
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def tag(client: TestClient, *sentences: list[str]) -> Any:
    return client.post("/v1/tag", json={"sentences": list(sentences)})


def test_a_full_queue_is_503_with_retry_after_and_spares_the_queued(
    app_with: Callable[..., TestClient], gate: Gate
) -> None:
    client = app_with(queue_size=3, request_timeout_s=20)
    batcher = client.app.state.tagger.models["tiny"].batcher  # type: ignore[attr-defined]
    gate.open.clear()
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(tag, client, ["The", "cat"])  # taken by the model, held at the gate
        until(gate.waiting.is_set)
        queued = pool.submit(tag, client, ["A"], ["dog", "barks"], ["Hi"])  # fills the queue: 3 of 3
        until(lambda: batcher.depth == 3)

        refused = tag(client, ["One", "more"])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["reason"] == "queue_full" and "TAGGER_QUEUE_SIZE" in error["message"]

        gate.open.set()
        assert running.result().status_code == 200
        assert [r["tokens"] for r in queued.result().json()["results"]] == [["A"], ["dog", "barks"], ["Hi"]]
    assert tag(client, ["Room", "again"]).status_code == 200


def test_a_result_past_the_deadline_is_504_and_its_queued_sentences_never_run(
    app_with: Callable[..., TestClient], gate: Gate
) -> None:
    client = app_with(request_timeout_s=0.3)
    gate.open.clear()
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(tag, client, ["The", "cat"])  # in the model when its deadline passes
        until(gate.waiting.is_set)
        late = tag(client, ["Dogs", "bark", "at", "the", "moon"])  # queued behind it past its deadline
        assert late.status_code == 504
        assert late.json()["error"]["reason"] == "deadline_exceeded"
        assert "TAGGER_REQUEST_TIMEOUT_S" in late.json()["error"]["message"]
        assert held.result().status_code == 504
    gate.open.set()
    assert tag(client, ["Fine", "now"]).status_code == 200
    assert gate.ran == [[2], [2]]  # the late request (5 tokens) cost no compute


def post(base: str, body: bytes) -> int:
    request = urllib.request.Request(f"{base}/v1/tag", body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def test_a_client_that_leaves_costs_no_compute(models_dir: Path, gate: Gate) -> None:
    app = create_app(Settings(models=models_dir, default_model="tiny", request_timeout_s=20, inference_process=False))
    try:
        with serving(app) as (base, port):
            batcher = app.state.tagger.models["tiny"].batcher
            gate.ran.clear()  # warm-up batches
            gate.waiting.clear()
            gate.open.clear()
            with ThreadPoolExecutor(1) as pool:
                held = pool.submit(post, base, b'{"sentences": [["The", "cat"]]}')
                until(gate.waiting.is_set)
                body = b'{"sentences": [["Dogs", "bark", "at", "the", "moon"]]}'
                abandon_request(port, body, lambda: batcher.depth == 1, linger=DISCONNECT_GRACE_S * 2)
                # the server notices, answers 499 into the void and counts it; the sentence stays queued, cancelled
                until(lambda: 'tagger_rejections_total{reason="client_disconnected"} 1.0' in metrics(base))
                gate.open.set()
                assert held.result() == 200
            assert post(base, b'{"sentences": [["Fine"]]}') == 200
            assert batcher.depth == 0
            assert gate.ran == [[2], [1]]  # the 5 tokens of the client that left never ran
    finally:
        gate.open.set()
