"""The review queue's feed never makes an answer wait: with the database's write lock held by someone else, sampled
sentences fill a bounded buffer, the rest are dropped and counted, and tag requests are answered at once; once
the lock goes, what was buffered is written."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from service.corrections.review import ReviewWriter
from service.corrections.store import CorrectionStore
from service.settings import Settings
from tagger.decoding import Tagged
from tests.conftest import ROOT
from tests.helpers import ready_client, until


def tagged(n: int, confidence: float = 0.5) -> Tagged:
    return Tagged(["O"] * n, (), np.ones(n), None, confidence)


def locked(path: Path) -> sqlite3.Connection:
    """Another writer holding the database's write lock (the store waits for it, up to its busy timeout)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_full_buffer_drops_and_counts_and_offer_never_blocks(tmp_path: Path) -> None:
    store = CorrectionStore(tmp_path / "c.db")
    store.start()
    writer = ReviewWriter(store, share=1.0, backlog=5, retention=timedelta(days=1))
    writer.start()
    holder = locked(tmp_path / "c.db")
    try:
        writer.offer("m", "v1", [["first"]], None, None, [tagged(1)])
        until(lambda: writer.backlog == 0)  # the writer holds it, waiting for the lock
        started = time.perf_counter()
        for i in range(40):
            writer.offer("m", "v1", [[f"w{i}"]], None, None, [tagged(1)])
        assert time.perf_counter() - started < 0.05  # 40 offers against a locked database: no waiting
        assert writer.backlog == 5 and writer.counts.by_model[("m", "dropped")] == 35
    finally:
        holder.rollback()
        holder.close()
    until(lambda: writer.counts.by_model[("m", "kept")] == 6, seconds=15)
    writer.close()
    assert len(store.review_queue("m", limit=100)) == 6
    store.close()


def test_the_share_is_sampled_per_sentence(tmp_path: Path) -> None:
    store = CorrectionStore(tmp_path / "c.db")
    draws = iter([0.05, 0.5, 0.09, 0.2])
    writer = ReviewWriter(store, share=0.1, backlog=10, retention=timedelta(days=1), draw=lambda: next(draws))
    writer.offer(
        "m", "v1", [["a"], ["b"], [], ["c"], ["d"]], None, None, [tagged(1)] * 2 + [tagged(0)] + [tagged(1)] * 2
    )
    writer.start()
    writer.close()
    assert sorted(item.served.tokens for item in store.review_queue("m")) == [("a",), ("c",)]  # blank skipped, undrawn
    store.close()


def test_a_tag_request_is_answered_while_the_database_is_locked(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "en-ner").symlink_to(ROOT / "exports" / "en-ner")
    settings = Settings(
        models=models,
        default_model="en-ner",
        inference_process=False,
        warmup=False,
        corrections_db=str(tmp_path / "c.db"),
        review_sample=1.0,
        review_backlog=2,
    )
    client = ready_client(settings)
    holder = locked(tmp_path / "c.db")
    try:
        for _ in range(5):
            started = time.perf_counter()
            answer = client.post("/v1/tag", json={"texts": ["Ada Lovelace lived in London."] * 4})
            assert answer.status_code == 200 and time.perf_counter() - started < 1.0  # the busy timeout is 5 s
        scraped = client.get("/metrics").text
        assert 'tagger_review_sentences_total{model="en-ner",outcome="dropped"}' in scraped
    finally:
        holder.rollback()
        holder.close()
        client.__exit__(None, None, None)
