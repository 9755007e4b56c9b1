"""When the model cannot keep up: a full queue is 503, a late result 504, and a client that leaves costs no compute.

Each runs in both modes, production's first: the model in an inference process of its own (held with SIGSTOP,
released with SIGCONT) and in a thread of the server (`inference_process=False`: held at a gate, a patch of this
process's `Runtime.tag` that waits until the test opens it). So the queue fills and deadlines pass on cue instead
of by racing a real load. What ran is read from `tagger_sentences_total`, which both modes count.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
MODES = pytest.mark.parametrize("inference_process", [True, False], ids=["own-process", "server-thread"])


@dataclass
class Gate:
    """Holds every batch run in this process until opened."""

    open: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)  # a batch is held at the gate


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()
    gate.open.set()
    original = Runtime.tag

    def held(self: Runtime, batch: Batch) -> Any:
        gate.waiting.set()
        assert gate.open.wait(30), "the test never opened the gate"
        return original(self, batch)

    monkeypatch.setattr(Runtime, "tag", held)  # an inference process is spawned: it never sees this patch
    yield gate
    gate.open.set()


@dataclass
class Hold:
    """Holds a model wherever it runs: its inference process stopped, or its thread at the gate."""

    app: Any
    gate: Gate

    @property
    def batcher(self) -> Any:
        return self.app.state.tagger.models["tiny"].batcher

    def hold(self) -> None:
        if self.batcher.pid is not None:
            os.kill(self.batcher.pid, signal.SIGSTOP)
        else:
            self.gate.waiting.clear()
            self.gate.open.clear()

    def release(self) -> None:
        if self.batcher.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.batcher.pid, signal.SIGCONT)
        self.gate.open.set()

    def occupy(self, pool: ThreadPoolExecutor, send: Callable[[], Any]) -> Future[Any] | None:
        """In a thread of the server, a request taken into a batch held at the gate (what a stopped inference
        process has not got: it takes nothing); None in an inference process."""
        if self.batcher.pid is not None:
            return None
        running = pool.submit(send)
        until(self.gate.waiting.is_set)
        return running


def sentences_tagged(text: str) -> float:
    match = re.search(r'^tagger_sentences_total\{model="tiny"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def app_with(models_dir: Path, gate: Gate) -> Iterator[Callable[..., tuple[TestClient, Hold]]]:
    clients: list[TestClient] = []
    holds: list[Hold] = []

    def start(**settings: Any) -> tuple[TestClient, Hold]:
        client = TestClient(create_app(Settings(models=models_dir, default_model="tiny", **settings)))
        clients.append(client.__enter__())
        until(lambda: client.get("/readyz").status_code == 200, seconds=60)
        holds.append(Hold(client.app, gate))
        return client, holds[-1]

    yield start
    for hold in holds:
        hold.release()
    for client in clients:
        client.__exit__(None, None, None)


def tag(client: TestClient, *sentences: list[str]) -> Any:
    return client.post("/v1/tag", json={"sentences": list(sentences)})


@MODES
def test_a_full_queue_is_503_with_retry_after_and_spares_the_queued(
    app_with: Callable[..., tuple[TestClient, Hold]], inference_process: bool
) -> None:
    client, hold = app_with(queue_size=3, request_timeout_s=20, inference_process=inference_process)
    hold.hold()
    try:
        with ThreadPoolExecutor(2) as pool:
            running = hold.occupy(pool, lambda: tag(client, ["The", "cat"]))
            queued = pool.submit(tag, client, ["A"], ["dog", "barks"], ["Hi"])  # fills the queue: 3 of 3
            until(lambda: hold.batcher.depth == 3)

            refused = tag(client, ["One", "more"])
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            error = refused.json()["error"]
            assert error["reason"] == "queue_full" and "TAGGER_QUEUE_SIZE" in error["message"]

            hold.release()
            assert running is None or running.result().status_code == 200
            assert [r["tokens"] for r in queued.result().json()["results"]] == [["A"], ["dog", "barks"], ["Hi"]]
    finally:
        hold.release()
    assert tag(client, ["Room", "again"]).status_code == 200


@MODES
def test_a_result_past_the_deadline_is_504_and_its_queued_sentences_never_run(
    app_with: Callable[..., tuple[TestClient, Hold]], inference_process: bool
) -> None:
    client, hold = app_with(request_timeout_s=0.5, inference_process=inference_process)
    before = sentences_tagged(client.get("/metrics").text)
    hold.hold()
    try:
        with ThreadPoolExecutor(1) as pool:
            held = hold.occupy(pool, lambda: tag(client, ["The", "cat"]))  # in the model when its deadline passes
            late = tag(client, ["Dogs", "bark", "at", "the", "moon"])  # queued past its deadline
            assert late.status_code == 504
            assert late.json()["error"]["reason"] == "deadline_exceeded"
            assert "TAGGER_REQUEST_TIMEOUT_S" in late.json()["error"]["message"]
            assert held is None or held.result().status_code == 504
    finally:
        hold.release()
    assert tag(client, ["Fine", "now"]).status_code == 200
    ran = sentences_tagged(client.get("/metrics").text) - before
    assert ran == 1 + (held is not None)  # "Fine now" (and the held one): the late sentence cost no compute
    assert hold.batcher.depth == 0


def post(base: str, body: bytes) -> int:
    request = urllib.request.Request(f"{base}/v1/tag", body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


@MODES
def test_a_client_that_leaves_costs_no_compute(models_dir: Path, gate: Gate, inference_process: bool) -> None:
    settings = Settings(models=models_dir, default_model="tiny", request_timeout_s=20)
    app = create_app(settings.model_copy(update={"inference_process": inference_process}))
    hold = Hold(app, gate)
    try:
        with serving(app) as (base, port):
            until(lambda: hold.batcher.available, seconds=60)
            before = sentences_tagged(metrics(base))
            hold.hold()
            with ThreadPoolExecutor(1) as pool:
                held = hold.occupy(pool, lambda: post(base, b'{"sentences": [["The", "cat"]]}'))
                body = b'{"sentences": [["Dogs", "bark", "at", "the", "moon"]]}'
                abandon_request(port, body, lambda: hold.batcher.depth == 1, linger=DISCONNECT_GRACE_S * 2)
                # the server notices, answers 499 into the void and counts it, and forgets the sentence at once
                until(lambda: 'tagger_rejections_total{reason="client_disconnected"} 1.0' in metrics(base))
                hold.release()
                assert held is None or held.result() == 200
            assert post(base, b'{"sentences": [["Fine"]]}') == 200
            assert hold.batcher.depth == 0
            ran = sentences_tagged(metrics(base)) - before
            assert ran == 1 + (held is not None)  # the 5 tokens of the client that left never ran
    finally:
        hold.release()
