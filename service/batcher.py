"""Dynamic batching: turn a stream of sentences into well-packed batches, and hand results back.

`BatchQueue` holds one model's waiting sentences and forms batches
(`service.scheduling`: fair between requests, similar lengths, short in
time); it is shared by the two ways a model runs. In an inference process of
its own (`service.remote.RemoteBatcher` and `service.worker`, the default)
one thread there reads requests and runs batches. In this process
(`Batcher`, TAGGER_INFERENCE_PROCESS=false), requests queue sentences each
with an asyncio future, and inference threads run batches. Routes see either
through one face, `ModelBatcher`. There is no fixed window either way: work
is taken the moment the model is free, so a lone request on an idle server
runs at once, and under load the queue fills while the previous batch runs,
which is what makes the next batch large.

The inference side forms its own batches instead of waiting for the event
loop to hand them one: the loop is busy parsing requests under load, and a
batch formed by a coroutine would wait its turn among them while the model
sits idle. Sentences whose request gave up (deadline, disconnect) are dropped
before they cost compute. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from service.metrics import Metrics
from service.scheduling import BatchLimits, Item, Speed, T, Turns, choose, take
from tagger.decoding import Tagged
from tagger.encoding import Batch, Encoded, pad

__all__ = ["BatchLimits", "BatchQueue", "Batcher", "Item", "ModelBatcher", "choose", "take"]
R = TypeVar("R")


class QueueFull(Exception):
    """The queue holds `queue_size` sentences already."""


class Draining(Exception):
    """The batcher is shutting down and takes no new work."""


class DeadlineExceeded(Exception):
    """A sentence waited past its request's deadline."""


class WorkerLost(Exception):
    """The process running a model's inference exited with sentences in flight."""


class LoadFailed(Exception):
    """A model's inference could not load it (its graph, its files, its inputs)."""


class TooSlow(Exception):
    """A request that could not finish before its deadline at the model's measured speed, even alone."""


class Overloaded(Exception):
    """The work queued ahead would keep a request past its deadline; `retry_after` seconds should clear it."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def admit(name: str, speed: Speed, queued_slots: int, slots: int, seconds_left: float) -> None:
    """Refuse at once a request its deadline cannot cover at the model's measured speed (no guess: admit).

    `slots` is the request's tokens (padding aside), `queued_slots` what is ahead of it.
    """
    if seconds_left <= 0:
        return  # already late: the queue answers it as such (504), without running it
    alone, ahead = speed.seconds(slots), speed.seconds(queued_slots)
    if alone is None or ahead is None:
        return
    if alone > seconds_left:
        fits = int(slots * seconds_left / alone)
        raise TooSlow(
            f"the request has {slots} tokens; model {name!r} runs about {speed.slots_per_second:,.0f} tokens/s, "
            f"so it needs about {alone:.1f} s, past the {seconds_left:.3g} s deadline (TAGGER_REQUEST_TIMEOUT_S); "
            f"send at most about {fits} tokens per request"
        )
    if alone + ahead > seconds_left:
        raise Overloaded(
            f"model {name!r} has about {ahead:.1f} s of work queued; this request would not finish within the "
            f"{seconds_left:.3g} s deadline (TAGGER_REQUEST_TIMEOUT_S)",
            retry_after=alone + ahead - seconds_left,
        )


class ModelBatcher(Protocol):
    """What routes and the app use of a model's batcher, wherever its inference runs."""

    name: str

    @property
    def depth(self) -> int:
        """Sentences submitted and not yet answered."""

    @property
    def available(self) -> bool:
        """Ready to take work (warmed up, not draining)."""

    @property
    def pid(self) -> int | None:
        """The inference process, or None when the model runs in this process."""

    def start(self) -> None:
        """Start inference; call from the serving event loop."""

    async def ready(self) -> None:
        """Return once the model is loaded and warmed up."""

    async def loaded(self) -> None:
        """Like `ready`, for a new version on trial: raise `LoadFailed` rather than retry if it cannot load."""

    def submit(
        self, sentences: Sequence[Encoded], deadline: float, details: bool = True
    ) -> list[asyncio.Future[Tagged]]:
        """Queue sentences (all or none): one future per sentence (QueueFull, Draining if refused)."""

    async def drain(self) -> None:
        """Refuse new work, finish what is queued, stop."""


def observe_batch(metrics: Metrics, name: str, sentences: int, slots: int, words: int, seconds: float) -> None:
    """Record one batch run: its inference time, size, padded size and padding share."""
    metrics.inference_time.labels(name).observe(seconds)
    metrics.batch_sentences.labels(name).observe(sentences)
    metrics.batch_tokens.labels(name).observe(slots)
    metrics.padding_ratio.labels(name).observe(1.0 - words / slots)
    metrics.sentences.labels(name).inc(sentences)
    metrics.tokens.labels(name).inc(words)


class BatchQueue(Generic[T]):
    """The sentences waiting for a model, shared by its inference threads (which block in `next`).

    Used by the in-process `Batcher` and by an inference process alike; it
    holds items whatever their tickets are, and `gone` says which ones nobody
    waits for.
    """

    def __init__(
        self,
        name: str,
        limits: BatchLimits,
        gone: Callable[[Item[T]], bool] = lambda item: False,
        speed: Speed | None = None,
    ) -> None:
        self.name = name
        self.limits = limits
        self.speed = speed if speed is not None else Speed()
        self._gone = gone
        self._turns = Turns()
        self._pending: list[Item[T]] = []
        self._changed = threading.Condition(threading.RLock())
        self.draining = False

    @property
    def depth(self) -> int:
        return len(self._pending)

    def put(self, items: Sequence[Item[T]]) -> None:
        """Queue items (all or none)."""
        with self._changed:
            if self.draining:
                raise Draining(f"model {self.name!r} is shutting down")
            if len(self._pending) + len(items) > self.limits.queue_size:
                raise QueueFull(
                    f"model {self.name!r} has {len(self._pending)} sentences queued; "
                    f"the queue holds {self.limits.queue_size} (TAGGER_QUEUE_SIZE)"
                )
            self._pending.extend(items)
            self._changed.notify()

    def remove(self, drop: Callable[[Item[T]], bool]) -> None:
        """Drop queued items at once (their request gave up)."""
        with self._changed:
            self._pending = [item for item in self._pending if not drop(item)]

    def close(self) -> None:
        """Refuse new items; `next` returns None once the queue is empty."""
        with self._changed:
            self.draining = True
            self._changed.notify_all()

    def next(self) -> tuple[list[Item[T]], list[Item[T]]] | None:
        """Block until there is work: (next batch, items past their deadline); None once closed and empty."""
        with self._changed:
            while not self._pending:
                if self.draining:
                    return None
                self._changed.wait()
            if self.limits.max_wait > 0:
                self._fill()
            return self.take_now()

    def take_now(self) -> tuple[list[Item[T]], list[Item[T]]]:
        """(next batch, items past their deadline), without waiting; both empty if nothing is queued."""
        with self._changed:
            budget = self.speed.budget(self.limits.max_batch_seconds)
            batch, late, self._pending = take(
                self._pending, self.limits, time.perf_counter(), self._gone, self._turns, budget
            )
            return batch, late

    @property
    def queued_slots(self) -> int:
        """Tokens waiting (padding aside) for a request still waiting for them."""
        with self._changed:
            return sum(item.length for item in self._pending if not self._gone(item))

    def fill_time(self) -> float:
        """Seconds to wait for the next batch to fill up under `max_wait` (0: take it now)."""
        with self._changed:
            if not self._pending or self.draining or len(self._pending) >= self.limits.batch_sentences:
                return 0.0
            return max(0.0, self._pending[0].enqueued + self.limits.max_wait - time.perf_counter())

    def _fill(self) -> None:
        """Wait (holding the condition) up to max_wait after the oldest arrival for a batch to fill up."""
        until = self._pending[0].enqueued + self.limits.max_wait
        while len(self._pending) < self.limits.batch_sentences and not self.draining:
            remaining = until - time.perf_counter()
            if remaining <= 0:
                return
            self._changed.wait(remaining)


class Batcher(Generic[R]):
    """Queue + inference threads for one model in this process; `run` maps a padded batch to one result per
    sentence, in order. A `ModelBatcher` when R is `Tagged` (`service.remote.RemoteBatcher` is the same with
    the queue and model in a process of their own)."""

    def __init__(
        self,
        name: str,
        run: Callable[[Batch], Sequence[R]],
        limits: BatchLimits,
        metrics: Metrics,
        warm_up: Callable[[], float | None] | None = None,
    ) -> None:
        self.name = name
        self._run = run
        self._warm_up = warm_up
        self._limits = limits
        self._metrics = metrics
        # a done future was cancelled: its request gave up or its client left
        self._queue: BatchQueue[asyncio.Future[R]] = BatchQueue(name, limits, gone=_future_done)
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests = 0
        self._running_slots = 0  # tokens of the batches being run (by several inference threads, maybe)
        self._running_lock = threading.Lock()

    @property
    def depth(self) -> int:
        return self._queue.depth

    @property
    def available(self) -> bool:
        return not self._queue.draining

    @property
    def pid(self) -> int | None:
        """None: the model runs in this process."""
        return None

    def start(self) -> None:
        """Start the inference threads; call from the event loop that will await the results."""
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._work, name=f"infer-{self.name}-{i}", daemon=True)
            for i in range(self._limits.workers)
        ]
        for thread in self._threads:
            thread.start()

    async def ready(self) -> None:
        """Run the warm-up (if any) off the event loop; the model is ready after it. A warm-up may return the
        padded tokens per second it measured: the first speed estimate."""
        if self._warm_up is not None:
            rate = await asyncio.to_thread(self._warm_up)
            if rate:
                self._queue.speed.slots_per_second = rate

    async def loaded(self) -> None:
        """The session was opened with the batcher: only the warm-up is left to fail."""
        try:
            await self.ready()
        except Exception as err:
            raise LoadFailed(f"{type(err).__name__}: {err}") from err

    def submit(self, sentences: Sequence[Encoded], deadline: float, details: bool = True) -> list[asyncio.Future[R]]:
        """Queue sentences (all or none); each future resolves to that sentence's result (`details`: unused here,
        the result is in this process anyway)."""
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        ahead = self._queue.queued_slots + self._running_slots
        admit(self.name, self._queue.speed, ahead, sum(len(s) for s in sentences), deadline - now)
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in sentences]
        request, self._requests = self._requests, self._requests + 1
        self._queue.put([Item(s, f, now, deadline, request) for s, f in zip(sentences, futures, strict=True)])
        self._metrics.queue_depth.labels(self.name).set(self._queue.depth)
        return futures

    async def drain(self) -> None:
        """Refuse new work, finish everything queued, then stop the threads."""
        self._queue.close()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)

    def _work(self) -> None:
        while (work := self._queue.next()) is not None:
            batch, late = work
            self._metrics.queue_depth.labels(self.name).set(self._queue.depth)
            if late:
                self._call(_fail, late, DeadlineExceeded("waited past the request deadline"))
            if batch:
                self._execute(batch)

    def _execute(self, batch: list[Item[asyncio.Future[R]]]) -> None:
        padded = pad([item.sentence for item in batch])
        started = time.perf_counter()
        queue_wait = self._metrics.queue_wait.labels(self.name)
        for item in batch:
            queue_wait.observe(started - item.enqueued)
        words = sum(item.length for item in batch)
        with self._running_lock:
            self._running_slots += words
        try:
            results = self._run(padded)
        except Exception as err:  # a failed batch fails its requests, never the thread
            self._call(_fail, batch, err)
            return
        finally:
            with self._running_lock:
                self._running_slots -= words
        finished = time.perf_counter()
        self._queue.speed.record(padded.words.size, finished - started)
        words = int(padded.lengths.sum())
        observe_batch(self._metrics, self.name, len(batch), padded.words.size, words, finished - started)
        latency = self._metrics.sentence_latency.labels(self.name)
        for item in batch:
            latency.observe(finished - item.enqueued)
        self._call(_deliver, batch, results)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback` on the event loop: asyncio futures may only be resolved there."""
        assert self._loop is not None, "Batcher.start() was not called"
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to answer
            self._loop.call_soon_threadsafe(callback, *args)


def _future_done(item: Item[asyncio.Future[Any]]) -> bool:
    return item.ticket.done()


def _deliver(batch: list[Item[asyncio.Future[Any]]], results: Sequence[Any]) -> None:
    for item, result in zip(batch, results, strict=True):
        if not item.ticket.done():
            item.ticket.set_result(result)


def _fail(items: list[Item[asyncio.Future[Any]]], error: Exception) -> None:
    for item in items:
        if not item.ticket.done():
            item.ticket.set_exception(error)
