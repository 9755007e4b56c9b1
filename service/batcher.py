"""Dynamic batching: turn a stream of sentences into well-packed batches, and hand results back.

One `Batcher` per model. Requests enqueue encoded sentences, each with an
asyncio future; inference threads form batches and run them. There is no
fixed window: a thread takes what is queued the moment it is free, so a lone
request on an idle server runs at once, and under load the queue fills while
the previous batch runs, which is what makes the next batch large.

The threads form their own batches instead of waiting for the event loop to
hand them one: the loop is busy parsing requests under load, and a batch
formed by a coroutine would wait its turn among them while the model sits
idle. The loop's only share of a batch is one callback that resolves its
futures.

Forming a batch: the oldest waiting sentence always goes in (nothing starves);
the others are chosen by closeness of length to it, while the padded size
(sentences x longest) stays within the token budget, the share of padding
within its limit, and the count within the batch size. Sentences whose
request gave up (deadline, disconnect) are dropped before they cost compute.
The batcher knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

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
    max_padding: float = 0.1  # largest share of padded positions in a batch (the oldest sentence always goes)
    max_wait: float = 0.0  # seconds to wait for a fuller batch; 0 = never wait
    queue_size: int = 4096
    workers: int = 1


R = TypeVar("R")


@dataclass(eq=False)
class _Item:
    sentence: Encoded
    future: asyncio.Future[Any]
    enqueued: float
    deadline: float
    length: int = field(init=False)

    def __post_init__(self) -> None:
        self.length = len(self.sentence)


def choose(items: Sequence[_Item], limits: BatchLimits) -> list[_Item]:
    """Pick a batch: the oldest item plus the closest in length, within the limits.

    A sentence joins only if the padded size (sentences x longest) stays within
    `max_tokens` and the share of padding within `max_padding`: a batch of
    similar lengths costs what its words cost, while one long sentence among
    short ones would make every row pay for its length.

    Example: lengths [10, 3, 11, 50] (oldest first), max_tokens 40 and
    max_padding 0.5 -> the items of length 10, 11 and 3 (3 x 11 = 33 slots,
    24 words: 27% padding; adding 50 would need 200 slots).
    """
    anchor = items[0]
    rest = sorted(items[1:], key=lambda it: abs(it.length - anchor.length))
    chosen, longest, words = [anchor], anchor.length, anchor.length
    for item in rest:
        if len(chosen) == limits.max_sentences:
            break
        widest = max(longest, item.length)
        slots = widest * (len(chosen) + 1)
        if slots > limits.max_tokens or 1.0 - (words + item.length) / slots > limits.max_padding:
            continue
        chosen.append(item)
        longest, words = widest, words + item.length
    return chosen


class Batcher(Generic[R]):
    """Queue + inference threads for one model; `run` maps a padded batch to one result per sentence, in order."""

    def __init__(self, name: str, run: Callable[[Batch], Sequence[R]], limits: BatchLimits, metrics: Metrics) -> None:
        self.name = name
        self._run = run
        self._limits = limits
        self._metrics = metrics
        self._pending: list[_Item] = []
        self._changed = threading.Condition()
        self._draining = False
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the inference threads; call from the event loop that will await the results."""
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._work, name=f"infer-{self.name}-{i}", daemon=True)
            for i in range(self._limits.workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, sentences: Sequence[Encoded], deadline: float) -> list[asyncio.Future[R]]:
        """Queue sentences (all or none); each future resolves to that sentence's result."""
        loop = asyncio.get_running_loop()
        with self._changed:
            if self._draining:
                raise Draining(f"model {self.name!r} is shutting down")
            if len(self._pending) + len(sentences) > self._limits.queue_size:
                raise QueueFull(
                    f"model {self.name!r} has {len(self._pending)} sentences queued; "
                    f"the queue holds {self._limits.queue_size} (TAGGER_QUEUE_SIZE)"
                )
            now = time.perf_counter()
            items = [_Item(s, loop.create_future(), now, deadline) for s in sentences]
            self._pending.extend(items)
            self._metrics.queue_depth.labels(self.name).set(len(self._pending))
            self._changed.notify()
        return [item.future for item in items]

    async def drain(self) -> None:
        """Refuse new work, finish everything queued, then stop the threads."""
        with self._changed:
            self._draining = True
            self._changed.notify_all()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._pending:
                    if self._draining:
                        return
                    self._changed.wait()
                if self._limits.max_wait > 0:
                    self._fill()
                batch = self._take()
            if batch:
                self._execute(batch)

    def _fill(self) -> None:
        """Wait (holding the condition) up to max_wait after the oldest arrival for a batch to fill up."""
        until = self._pending[0].enqueued + self._limits.max_wait
        while len(self._pending) < self._limits.max_sentences and not self._draining:
            remaining = until - time.perf_counter()
            if remaining <= 0:
                return
            self._changed.wait(remaining)

    def _take(self) -> list[_Item]:
        """Remove and return the next batch, failing or dropping items nobody waits for (condition held)."""
        now = time.perf_counter()
        live: list[_Item] = []
        late: list[_Item] = []
        for item in self._pending:
            if item.future.done():  # cancelled: the request gave up or the client left
                continue
            (late if now > item.deadline else live).append(item)
        if late:
            self._call(_fail, late, DeadlineExceeded("waited past the request deadline"))
        batch = choose(live, self._limits) if live else []
        taken = set(map(id, batch))
        self._pending = [item for item in live if id(item) not in taken]
        self._metrics.queue_depth.labels(self.name).set(len(self._pending))
        return batch

    def _execute(self, batch: list[_Item]) -> None:
        padded = pad([item.sentence for item in batch])
        started = time.perf_counter()
        for item in batch:
            self._metrics.queue_wait.labels(self.name).observe(started - item.enqueued)
        try:
            results = self._run(padded)
        except Exception as err:  # a failed batch fails its requests, never the thread
            self._call(_fail, batch, err)
            return
        finished = time.perf_counter()
        self._observe(padded, finished - started)
        for item in batch:
            self._metrics.sentence_latency.labels(self.name).observe(finished - item.enqueued)
        self._call(_deliver, batch, results)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback` on the event loop: asyncio futures may only be resolved there."""
        assert self._loop is not None, "Batcher.start() was not called"
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to answer
            self._loop.call_soon_threadsafe(callback, *args)

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


def _deliver(batch: list[_Item], results: Sequence[Any]) -> None:
    for item, result in zip(batch, results, strict=True):
        if not item.future.done():
            item.future.set_result(result)


def _fail(items: list[_Item], error: Exception) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(error)
