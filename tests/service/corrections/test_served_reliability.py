"""Corrections through a real `tagger serve` (the shipped en-ner in its inference process), on a real SQLite file
and a real PostgreSQL: kill -9 right after an acknowledged correction loses nothing, 50 identical corrections
posted at once leave one row, and with the database down corrections get 503 + Retry-After naming the cause
while tagging goes on, and work again when it is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any

import pytest

from service.corrections.store import CorrectionStore
from tests.conftest import ROOT
from tests.helpers import free_port, get, metrics, post, server_output, start_server, until, wait_ready
from tests.service.corrections.conftest import PostgresServer

pytestmark = pytest.mark.server

TOKENS = ["Ada", "Lovelace", "met", "Charles", "Babbage", "."]
TAGS = ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    (folder / "en-ner").symlink_to(ROOT / "exports" / "en-ner")
    return folder


def serve(models: Path, database: str, **env: str) -> tuple[str, subprocess.Popen[str]]:
    port = free_port()
    process = start_server(
        models, port, TAGGER_DEFAULT_MODEL="en-ner", TAGGER_CORRECTIONS_DB=database, TAGGER_WARMUP="false", **env
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process)
    return base, process


@pytest.fixture
def served(models: Path, database_url: str) -> Iterator[tuple[str, subprocess.Popen[str], str]]:
    base, process = serve(models, database_url)
    yield base, process, database_url
    process.kill()
    process.wait(timeout=30)


def correct(base: str, tokens: list[str], tags: list[str]) -> tuple[int, dict[str, Any]]:
    status, body = post(f"{base}/v1/models/en-ner/corrections", {"tokens": tokens, "tags": tags})
    return status, json.loads(body)


def test_kill_9_right_after_acknowledged_corrections_loses_none(served: tuple[str, Any, str]) -> None:
    base, process, database = served
    acknowledged = []
    for i in range(10):
        status, answer = correct(base, [f"Person{i}", *TOKENS[1:]], TAGS)
        assert status == 201, answer
        acknowledged.append(answer["id"])
    os.kill(process.pid, signal.SIGKILL)  # the moment the last one was acknowledged: no shutdown, no checkpoint
    process.wait(timeout=30)
    store = CorrectionStore(database)
    stored = {s.id: s.correction for s in store.corrections("en-ner")}
    store.close()
    assert sorted(stored) == sorted(acknowledged), server_output(process)[-2000:]
    assert stored[acknowledged[-1]].tokens[0] == "Person9" and stored[acknowledged[-1]].served_tags is not None


def test_fifty_identical_corrections_at_once_leave_one_row(served: tuple[str, Any, str]) -> None:
    base, _, database = served
    barrier = Barrier(50)

    def send(_: int) -> tuple[int, dict[str, Any]]:
        barrier.wait(timeout=30)
        return correct(base, TOKENS, TAGS)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(send, range(50)))
    assert sorted(status for status, _ in answers) == [200] * 49 + [201], answers
    assert len({answer["id"] for _, answer in answers}) == 1
    store = CorrectionStore(database)
    assert len(list(store.corrections("en-ner", conflicts="all"))) == 1
    store.close()


def test_database_down_is_a_503_with_retry_after_while_tagging_goes_on(models: Path) -> None:
    database = PostgresServer.create()
    process = None
    try:
        database.start()
        base, process = serve(models, database.new_database(), TAGGER_REVIEW_SAMPLE="1")
        assert correct(base, TOKENS, TAGS)[0] == 201
        database.stop()

        for path, body in (
            ("/v1/models/en-ner/corrections", {"tokens": ["Alan", "Turing"], "tags": ["B-PER", "I-PER"]}),
            ("/v1/models/en-ner/review", None),
            ("/v1/models/en-ner/corrections", None),
        ):
            refused = refusal(base + path, body)
            assert refused.status == 503, (path, refused.status)
            assert int(refused.headers["Retry-After"]) > 0
            error = json.loads(refused.read())["error"]
            assert error["reason"] == "corrections_unavailable"
            assert "postgresql" in error["message"] and "unavailable" in error["message"], error
            assert "127.0.0.1" not in error["message"]  # where the database is stays in the server's log
        assert "corrections database (postgresql at" in server_output(process)  # the operator's cause
        for _ in range(5):  # every sentence sampled for review (TAGGER_REVIEW_SAMPLE=1), with nowhere to keep it
            status, answer = post(f"{base}/v1/tag", {"texts": ["Ada Lovelace lived in London."]})
            assert status == 200 and json.loads(answer)["results"][0]["tags"][0] == "B-PER"
        failed = 'tagger_review_sentences_total{model="en-ner",outcome="failed"}'
        until(lambda: failed in metrics(base), seconds=20)  # counted, not kept, and never waited for
        assert get(f"{base}/readyz")[0] == 200  # the database is not the service's readiness

        database.start()  # back: the same server process answers corrections again, nothing lost
        assert correct(base, ["Alan", "Turing"], ["B-PER", "I-PER"])[0] == 201
        exported = get(f"{base}/v1/models/en-ner/corrections?format=iob2")[1].decode()
        assert "Lovelace\tI-PER" in exported and "Turing\tI-PER" in exported
    finally:
        if process is not None:
            process.kill()
            process.wait(timeout=30)
        database.remove()


def refusal(url: str, body: dict[str, Any] | None) -> Any:
    """The HTTP error of a request expected to fail (its status, headers and body)."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response
    except urllib.error.HTTPError as err:
        return err
