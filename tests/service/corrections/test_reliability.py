"""Nothing acknowledged is lost, nothing is stored twice, a database that is down fails fast and clearly,
and an export of 10,000 corrections streams in bounded memory: on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service.corrections.errors import StoreUnavailable
from service.corrections.records import Correction
from service.corrections.store import CorrectionStore
from service.corrections.validation import TagRules
from tests.conftest import ROOT
from tests.service.corrections.conftest import PostgresServer

NER = TagRules(("B-PER", "I-PER", "O"), "IOB2", max_tokens=100)

CHILD = """
import sys, time
from service.corrections.records import Correction
from service.corrections.store import CorrectionStore
from service.corrections.validation import TagRules
store = CorrectionStore(sys.argv[1])
rules = TagRules(("B-PER", "I-PER", "O"), "IOB2", max_tokens=100)
stored = store.add_correction(Correction("en-ner", ("Ada", "Lovelace", "wrote"), ("B-PER", "I-PER", "O")), rules)
print("acked", stored.id, flush=True)
time.sleep(60)
"""


def test_acknowledged_correction_survives_kill_9(database_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("acked"), line
        os.kill(child.pid, signal.SIGKILL)  # right after the acknowledgement: no close, no checkpoint
    finally:
        child.kill()
        child.wait(timeout=10)
    reopened = CorrectionStore(database_url)
    stored = list(reopened.corrections("en-ner"))
    reopened.close()
    assert [s.correction.tokens for s in stored] == [("Ada", "Lovelace", "wrote")]
    assert stored[0].id == int(line.split()[1])


def test_fifty_identical_corrections_at_once_leave_one_row(database_url: str) -> None:
    stores = [CorrectionStore(database_url) for _ in range(2)]  # two replicas' worth of engines
    for store in stores:
        store.start()
    correction = Correction("en-ner", ("Grace", "Hopper"), ("B-PER", "I-PER"), corrected_by="someone")
    barrier = threading.Barrier(50)

    def post(i: int) -> tuple[int, bool]:
        barrier.wait(timeout=30)
        stored = stores[i % 2].add_correction(correction, NER)
        return stored.id, stored.created

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(post, range(50)))
    assert len({id_ for id_, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(list(stores[0].corrections("en-ner"))) == 1
    for store in stores:
        store.close()


def test_export_of_10000_corrections_streams_in_bounded_memory(database_url: str) -> None:
    store = CorrectionStore(database_url)
    tokens = tuple(f"word{j}" for j in range(20))
    batch = [Correction("en-ner", (f"n{i}", *tokens), ("B-PER", *("O",) * 20)) for i in range(10_000)]
    store.add_corrections(batch, NER)
    tracemalloc.start()
    try:
        written, chunks = 0, 0
        for chunk in store.export("en-ner", "iob2", conflicts="all"):
            written += len(chunk)
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.close()
    assert chunks == 10_000
    # the file is ~2.3 MB of text and the rows as Python objects several times that; a stream holds a batch
    assert written > 2_000_000
    assert peak < 3_000_000, f"exporting held {peak / 1e6:.1f} MB at its peak"


def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "corrections.db").mkdir()  # where the file should be: as a volume mounted wrong looks
    with pytest.raises(StoreUnavailable, match=r"sqlite at sqlite:///.*unable to open database file"):
        CorrectionStore(tmp_path / "corrections.db").start()


@pytest.mark.server
def test_postgres_down_raises_store_unavailable_fast_then_recovers() -> None:
    server = PostgresServer.create()
    try:
        server.start()
        store = CorrectionStore(server.new_database(), connect_timeout=2)
        store.add_correction(Correction("en-ner", ("Ada",), ("B-PER",)), NER)
        server.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"postgresql at postgresql\+psycopg://tagger@127.0.0.1") as caught:
            store.add_correction(Correction("en-ner", ("Alan",), ("B-PER",)), NER)
        assert time.monotonic() - started < 5, "a database that is down must fail fast"
        assert caught.value.retry_after > 0
        with pytest.raises(StoreUnavailable):
            list(store.corrections("en-ner"))
        server.start()  # back up: the pool reconnects, nothing was lost
        assert [s.correction.tokens for s in store.corrections("en-ner")] == [("Ada",)]
        store.close()
    finally:
        server.remove()


def test_a_store_whose_database_is_unreachable_fails_fast_at_start() -> None:
    unreachable = CorrectionStore("postgresql://tagger@127.0.0.1:9/none", connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable"):
        unreachable.start()
    assert time.monotonic() - started < 5


def test_sqlite_commits_are_synced_to_the_wal(tmp_path: Path) -> None:
    store = CorrectionStore(tmp_path / "corrections.db")
    store.start()
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: fsync at every commit
    store.close()
