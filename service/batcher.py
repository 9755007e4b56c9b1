"""Dynamic batching: turn a stream of sentences into well-packed batches, and hand results back.

One `Batcher` per model. Requests enqueue encoded sentences, each with a
future; worker tasks form batches and run them off the event loop. There is
no fixed window: a worker takes what is queued the moment it is free, so a
lone request on an idle server runs at once, and under load the queue fills
while the previous batch runs, which is what makes the next batch large.

Forming a batch: the oldest waiting sentence always goes in (nothing starves);
the others are chosen by closeness of length to it, while the padded size
(sentences x longest) stays within the token budget and the count within the
batch size. Sentences whose request gave up (deadline, disconnect) are
dropped before they cost compute. The batcher knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from service.metrics import Metrics
from tagger.encoding import Batch, Encoded, pad


class QueueFull(Exception):
    """The queue holds `queue_size` sentences already."""


class Draining(Exception):
    """The batcher is shutting down and takes no new work."""


class DeadlineExceeded(Exception):
    """A sentence waited past its request's deadline."""


@dataclass(frozen=True)
class BatchLimits:
    max_sentences: int = 64
    max_tokens: int = 4096  # padded: sentences x longest
    max_wait: float = 0.0  # seconds to wait for a fuller batch; 0 = never wait
    queue_size: int = 4096
    workers: int = 1


@dataclass(eq=False)
class _Item:
    sentence: Encoded
    future: asyncio.Future[np.ndarray]
    enqueued: float
    deadline: float
    length: int = field(init=False)

    def __post_init__(self) -> None:
        self.length = len(self.sentence)


def choose(items: Sequence[_Item], limits: BatchLimits) -> list[_Item]:
    """Pick a batch: the oldest item plus the closest in length, within the limits.

    Example: lengths [10, 3, 11, 50] (oldest first), max_tokens 40 -> the items
    of length 10, 11 and 3 (3 x 11 = 33 <= 40; adding 50 would need 200).
    """
    anchor = items[0]
    rest = sorted(items[1:], key=lambda it: abs(it.length - anchor.length))
    chosen, longest = [anchor], anchor.length
    for item in rest:
        if len(chosen) == limits.max_sentences:
            break
        widest = max(longest, item.length)
        if widest * (len(chosen) + 1) > limits.max_tokens:
            continue
        chosen.append(item)
        longest = widest
    return chosen


class Batcher:
    """Queue + workers for one model; `run` maps a padded batch to scores (B, T, K)."""

    def __init__(self, name: str, run: Callable[[Batch], np.ndarray], limits: BatchLimits, metrics: Metrics) -> None:
        self.name = name
        self._run = run
        self._limits = limits
        self._metrics = metrics
        self._pending: list[_Item] = []
        self._wake = asyncio.Event()
        self._draining = False
        self._workers: list[asyncio.Task[None]] = []
        self._executor = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix=f"infer-{name}")

    @property
    def depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"batcher-{self.name}-{i}") for i in range(self._limits.workers)
        ]

    def submit(self, sentences: Sequence[Encoded], deadline: float) -> list[asyncio.Future[np.ndarray]]:
        """Queue sentences (all or none); each future resolves to that sentence's scores (n, K)."""
        if self._draining:
            raise Draining(f"model {self.name!r} is shutting down")
        if len(self._pending) + len(sentences) > self._limits.queue_size:
            raise QueueFull(
                f"model {self.name!r} has {len(self._pending)} sentences queued; "
                f"the queue holds {self._limits.queue_size} (TAGGER_QUEUE_SIZE)"
            )
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        items = [_Item(s, loop.create_future(), now, deadline) for s in sentences]
        self._pending.extend(items)
        self._metrics.queue_depth.labels(self.name).set(len(self._pending))
        self._wake.set()
        return [item.future for item in items]

    async def drain(self) -> None:
        """Refuse new work, finish everything queued, then stop the workers."""
        self._draining = True
        self._wake.set()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def _work(self) -> None:
        while True:
            while not self._pending:
                if self._draining:
                    return
                self._wake.clear()
                await self._wake.wait()
            if self._limits.max_wait > 0:
                await self._fill()
            batch = self._take()
            if batch:
                await self._execute(batch)

    async def _fill(self) -> None:
        """Wait up to max_wait after the oldest arrival for a batch to fill up."""
        until = self._pending[0].enqueued + self._limits.max_wait
        while len(self._pending) < self._limits.max_sentences and not self._draining:
            remaining = until - time.perf_counter()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Item]:
        """Remove and return the next batch, failing or dropping items nobody waits for."""
        now = time.perf_counter()
        live = []
        for item in self._pending:
            if item.future.done():  # cancelled: the request gave up or the client left
                continue
            if now > item.deadline:
                item.future.set_exception(DeadlineExceeded("waited past the request deadline"))
                continue
            live.append(item)
        batch = choose(live, self._limits) if live else []
        taken = set(map(id, batch))
        self._pending = [item for item in live if id(item) not in taken]
        self._metrics.queue_depth.labels(self.name).set(len(self._pending))
        return batch

    async def _execute(self, batch: list[_Item]) -> None:
        padded = pad([item.sentence for item in batch])
        started = time.perf_counter()
        for item in batch:
            self._metrics.queue_wait.labels(self.name).observe(started - item.enqueued)
        try:
            scores = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, padded)
        except Exception as err:  # a failed batch fails its requests, never the worker
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(err)
            return
        finished = time.perf_counter()
        self._observe(padded, finished - started)
        for row, item in enumerate(batch):
            if not item.future.done():
                item.future.set_result(scores[row, : item.length])
                self._metrics.sentence_latency.labels(self.name).observe(finished - item.enqueued)

    def _observe(self, padded: Batch, seconds: float) -> None:
        m, name = self._metrics, self.name
        slots = padded.words.size
        real = int(padded.lengths.sum())
        m.inference_time.labels(name).observe(seconds)
        m.batch_sentences.labels(name).observe(len(padded.lengths))
        m.batch_tokens.labels(name).observe(slots)
        m.padding_ratio.labels(name).observe(1.0 - real / slots)
        m.sentences.labels(name).inc(len(padded.lengths))
        m.tokens.labels(name).inc(real)
