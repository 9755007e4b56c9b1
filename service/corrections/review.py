"""The review queue's feed: a sampled share of served sentences, written to the store by one background thread.

The answer to a tag request never waits for the database. `offer` (called on the event loop after the answer's
results are in) draws the sample and puts each kept sentence on a bounded in-memory queue without blocking; when
the queue is full (the database slow or down) the sentence is dropped and counted. One thread takes what is
queued, writes it in batches (one transaction per batch), applies the retention, and refreshes the store's
counts for the metrics, so a scrape never touches the database either.

What is counted here (`ReviewCounts`) is plain integers per model, read by the metrics collector
(`service.observability.corrections`); nothing of a sentence's contents leaves the queue but into the store.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from service.corrections.errors import StoreUnavailable
from service.corrections.records import Counts, Served
from service.corrections.store import CorrectionStore
from tagger.decoding import Tagged

log = logging.getLogger("tagger")

BATCH = 200  # sentences written in one transaction at most
COUNTS_EVERY_S = 30.0  # how often the store's counts (for the metrics) are read
RETENTION_EVERY_S = 600.0  # how often expired sentences are deleted (the queue's reads skip them anyway)


@dataclass
class ReviewCounts:
    """Sentences per (model, outcome): kept (written), dropped (queue full), failed (database down)."""

    by_model: Counter[tuple[str, str]] = field(default_factory=Counter)
    stored: list[Counts] = field(default_factory=list)  # the store's counts, as last read (every COUNTS_EVERY_S)


class ReviewWriter:
    """Samples served sentences into the review queue through a bounded buffer and one writer thread."""

    def __init__(
        self,
        store: CorrectionStore,
        share: float,
        backlog: int,
        retention: timedelta,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.share = share
        self.retention = retention
        self.counts = ReviewCounts()
        self._draw = draw
        self._queue: queue.Queue[Served | None] = queue.Queue(maxsize=backlog)
        self._thread = threading.Thread(target=self._run, name="review-writer", daemon=True)
        self._stopped = threading.Event()
        self._stale = False  # a correction was stored: read the counts at the next turn, not in 30 s

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (within `timeout`), then stop the thread."""
        self._stopped.set()
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._thread.join(timeout)

    def counts_changed(self) -> None:
        """A correction was stored: the metrics' counts are read again within a second."""
        self._stale = True

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def offer(
        self,
        model: str,
        version: str,
        tokens: Sequence[Sequence[str]],
        texts: Sequence[str] | None,
        offsets: Sequence[Sequence[tuple[int, int]]] | None,
        tagged: Sequence[Tagged],
    ) -> None:
        """Keep a sampled share of a request's sentences (one per input); never blocks."""
        if self.share <= 0 or self._stopped.is_set():
            return
        for i, (words, result) in enumerate(zip(tokens, tagged, strict=True)):
            if not words or result.confidence is None or self._draw() >= self.share:
                continue
            served = Served(
                model=model,
                version=version,
                tokens=tuple(words),
                tags=tuple(result.tags),
                confidence=result.confidence,
                text=texts[i] if texts is not None else None,
                offsets=tuple(offsets[i]) if offsets is not None else None,
            )
            try:
                self._queue.put_nowait(served)
            except queue.Full:
                self.counts.by_model[(model, "dropped")] += 1

    def _run(self) -> None:
        last_counts = last_retention = 0.0
        while True:
            batch, done = self._take()
            if batch:
                self._write(batch)
            now = time.monotonic()
            if now - last_retention >= RETENTION_EVERY_S or not last_retention:
                last_retention = now
                self._try(lambda: self.store.delete_review_older_than(self.retention))
            if now - last_counts >= COUNTS_EVERY_S or not last_counts or self._stale:
                last_counts, self._stale = now, False
                self._try(self._read_counts)
            if done:
                return

    def _take(self) -> tuple[list[Served], bool]:
        """Up to BATCH queued sentences (waiting at most a second for the first); True when closing."""
        try:
            first = self._queue.get(timeout=1.0)
        except queue.Empty:
            return [], self._stopped.is_set()
        batch: list[Served] = []
        item: Served | None = first
        while item is not None:
            batch.append(item)
            if len(batch) >= BATCH:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _write(self, batch: list[Served]) -> None:
        try:
            self.store.add_review_items(batch)
        except StoreUnavailable as err:
            log.warning("review queue: %d sentences not kept: %s", len(batch), err)
            outcome = "failed"
        else:
            outcome = "kept"
        for served in batch:
            self.counts.by_model[(served.model, outcome)] += 1

    def _read_counts(self) -> None:
        self.counts.stored = self.store.counts()

    @staticmethod
    def _try(operation: Callable[[], object]) -> None:
        try:
            operation()
        except StoreUnavailable as err:
            log.warning("corrections database: %s", err)
