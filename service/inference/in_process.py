"""A model run in this process (TAGGER_INFERENCE_PROCESS=false): requests queue sentences each with an asyncio
future, and inference threads run batches, sharing the server's GIL with its event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from service.inference.admission import LoadFailed, admit, too_late
from service.inference.batcher import observe_batch
from service.inference.queue import BatchQueue
from service.inference.scheduling import BatchLimits, Item
from service.observability.metrics import Metrics
from tagger.encoding import Batch, Encoded, pad

R = TypeVar("R")


class InProcessBatcher(Generic[R]):
    """Queue + inference threads for one model in this process; `run` maps a padded batch to one result per
    sentence, in order. A `ModelBatcher` when R is `Tagged` (`ProcessBatcher` is the
    same with the queue and model in a process of their own)."""

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
            for i in range(self._limits.threads)
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
                self._call(_fail, late, too_late())
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
        assert self._loop is not None, "InProcessBatcher.start() was not called"
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
