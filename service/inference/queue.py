"""The sentences waiting for one model, and how batches are taken from them (`service.inference.scheduling`).

Shared by the two ways a model runs: the inference process's reader thread and the in-process batcher's threads
block in `next`. The inference side forms its own batches instead of waiting for the event loop to hand them one:
the loop is busy parsing requests under load, and a batch formed by a coroutine would wait its turn among them
while the model sits idle. Sentences whose request gave up (deadline, disconnect) are dropped before they cost
compute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic

from service.inference.admission import check_room, shutting_down
from service.inference.scheduling import BatchLimits, Item, Speed, T, Turns, take


class BatchQueue(Generic[T]):
    """The sentences waiting for a model, shared by its inference threads (which block in `next`).

    Used by the in-process `InProcessBatcher` and by an inference process alike; it
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
                raise shutting_down(self.name)
            check_room(self.name, len(self._pending), len(items), self.limits.queue_size)
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
