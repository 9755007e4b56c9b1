"""Each model's queue and inference run in a process of their own: what a user sees when it crashes or hangs.

SIGKILL stands for a crash, SIGSTOP for a hang. A full queue, a late result and a client that leaves are in
test_overload.py, run in both modes; a hang under light traffic against a real `tagger serve` in
test_hung_process.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.inference.messages import (
    BatchDone,
    BatchReport,
    Cancel,
    Drain,
    Result,
    SentenceKey,
    Submit,
    frame,
    unframe,
)
from service.inference.process_batcher import ProcessBatcher
from service.observability.metrics import create_metrics
from service.settings import Settings
from tagger.decoding import Decoded, ScoredSpan, Tagged, top_k
from tagger.encoding import Encoded
from tests.helpers import until

pytestmark = [pytest.mark.trains, pytest.mark.server]
JSON = {"content-type": "application/json"}


@pytest.fixture
def start(models_dir: Path) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def start(**settings: Any) -> TestClient:
        client = TestClient(create_app(Settings(models=models_dir, default_model="tiny", **settings)))
        clients.append(client.__enter__())
        until(lambda: client.get("/readyz").status_code == 200, seconds=60)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def batcher_of(app: Any) -> ProcessBatcher:
    batcher = app.state.tagger.models["tiny"].batcher
    assert isinstance(batcher, ProcessBatcher) and batcher.pid is not None
    return batcher


def tag(client: TestClient, *sentences: list[str]) -> Any:
    return client.post("/v1/tag", json={"sentences": list(sentences)})


def sentences_tagged(text: str) -> float:
    match = re.search(r'^tagger_sentences_total\{model="tiny"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_the_model_runs_in_its_own_process_and_answers_like_in_this_one(start: Callable[..., TestClient]) -> None:
    client = start()
    assert batcher_of(client.app).pid != os.getpid()
    response = tag(client, ["The", "cat", "sat", "."], ["Hi"])
    assert response.status_code == 200
    detailed = client.post("/v1/tag", json={"sentences": [["The", "cat"]], "scores": True, "top_k": 2}).json()
    (result,) = detailed["results"]
    assert len(result["scores"]) == 2 and len(result["top_k"][0]) == 2
    assert result["top_k"][0][0]["tag"] == result["tags"][0]


def test_a_crashed_inference_process_fails_its_requests_with_503_and_is_replaced(
    start: Callable[..., TestClient],
) -> None:
    client = start(request_timeout_s=20)
    batcher = batcher_of(client.app)
    crashed = batcher.pid
    os.kill(crashed, signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(tag, client, ["The", "cat"])
            until(lambda: batcher.depth == 1)
            os.kill(crashed, signal.SIGKILL)  # type: ignore[arg-type]
            lost = in_flight.result()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(crashed, signal.SIGCONT)  # type: ignore[arg-type]
    assert lost.status_code == 503 and lost.headers["retry-after"] == "2"
    assert lost.json()["error"]["reason"] == "inference_restarting"
    assert client.get("/readyz").json() == {"status": "restarting", "models": ["tiny"]}
    until(lambda: client.get("/readyz").status_code == 200, seconds=60)
    assert batcher.pid != crashed and batcher.depth == 0
    assert tag(client, ["Fine", "again"]).json()["results"][0]["tokens"] == ["Fine", "again"]
    text = client.get("/metrics").text
    assert 'tagger_inference_restarts_total{model="tiny"} 1.0' in text
    memory = re.search(r'^tagger_inference_process_resident_memory_bytes\{model="tiny"[^}]*\} (\S+)$', text, re.M)
    assert memory and float(memory.group(1)) > 10e6  # the new process: ONNX Runtime and the model


def test_a_hung_inference_process_is_killed_and_replaced(start: Callable[..., TestClient]) -> None:
    client = start(request_timeout_s=20, inference_stall_timeout_s=1.0)
    batcher = batcher_of(client.app)
    hung = batcher.pid
    os.kill(hung, signal.SIGSTOP)  # type: ignore[arg-type]  # alive, but answers nothing
    try:
        response = tag(client, ["The", "cat"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGCONT)  # type: ignore[arg-type]
    assert response.status_code == 503 and response.json()["error"]["reason"] == "inference_restarting"
    until(lambda: client.get("/readyz").status_code == 200, seconds=60)
    assert batcher.pid != hung and tag(client, ["Fine"]).status_code == 200


def test_messages_survive_any_split_of_the_byte_stream() -> None:
    messages = [Submit(1, [((2, 3), (1, 1), ((2,), (3,)))], 9.5, False), Cancel(1), Drain()]
    stream = b"".join(frame(m) for m in messages)
    for cut in range(1, len(stream)):
        buffer, got = bytearray(), []
        for part in (stream[:cut], stream[cut:]):
            buffer += part
            got += list(unframe(buffer))
        assert got == messages and not buffer


def test_a_result_row_carries_probabilities_only_when_asked() -> None:
    marginals = np.array([[0.75, 0.25], [0.1, 0.9]])
    tags = ("B-PER", "O")
    decoded = Decoded(
        ids=np.array([0, 1]),
        tags=["B-PER", "O"],
        probs=np.array([0.75, 0.9]),
        marginals=marginals,
        output_tags=tags,
        spans=[ScoredSpan("PER", 0, 1, 0.7)],
    )
    detailed = decoded.tagged(details=True)
    assert detailed.tags == decoded.tags and list(detailed.spans) == decoded.spans
    assert detailed.marginals is not None and top_k(detailed.marginals, tags, 1) == [[("B-PER", 0.75)], [("O", 0.9)]]
    np.testing.assert_array_equal(detailed.probs, decoded.probs)  # type: ignore[arg-type]
    plain = decoded.tagged(details=False)
    assert plain.tags == decoded.tags and list(plain.spans) == decoded.spans and plain.probs is None


def test_a_request_that_gives_up_after_part_of_it_was_answered_withdraws_the_rest() -> None:
    async def scenario() -> tuple[int, list[tuple[object, ...]]]:
        batcher = ProcessBatcher("m", "unused", Settings(), create_metrics())
        sentence = Encoded(words=(2, 3), cases=(1, 1), chars=((2,), (3,)))
        futures = batcher.submit([sentence] * 3, time.perf_counter() + 5, details=False)
        answered = BatchReport(sentences=1, slots=2, words=2, seconds=0.001, waits=(0.0,), depth=2)
        batcher._on_message(BatchDone(answered, [Result(SentenceKey(0, 0), Tagged(["X", "Y"], ()))]))
        assert (await futures[0]).tags == ["X", "Y"] and batcher.depth == 2
        for future in futures:  # what the route does when it gives up (deadline, client gone)
            future.cancel()
        await asyncio.sleep(0)  # done callbacks run
        sent = [m for data in batcher._backlog for m in unframe(bytearray(data))]  # no process started: all kept
        return batcher.depth, sent

    depth, sent = asyncio.run(scenario())
    assert depth == 0
    assert [type(m) for m in sent] == [Submit, Cancel] and sent[1] == Cancel(0)
