"""The requests an inference process owes answers to, as the server side keeps them: futures and counts.

Each request is a list of futures, one per sentence; answers and failures arrive per sentence (`SentenceKey`),
a request that gives up is forgotten at once, and the counts (sentences, tokens) are what admission and the queue
bound read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from service.inference.messages import SentenceKey
from tagger.decoding import Tagged


@dataclass(eq=False)
class OpenRequest:
    futures: list[asyncio.Future[Tagged]]
    lengths: list[int]  # tokens per sentence
    submitted: float  # time.perf_counter() when it was sent
    left: int = field(init=False)  # sentences not yet answered
    tokens_left: int = field(init=False)  # and their tokens

    def __post_init__(self) -> None:
        self.left = len(self.futures)
        self.tokens_left = sum(self.lengths)


class Outstanding:
    """Requests sent and not yet answered or given up, by id."""

    def __init__(self) -> None:
        self._requests: dict[int, OpenRequest] = {}
        self._next_id = 0
        self.sentences = 0  # sentences owed
        self.tokens = 0  # their tokens

    def add(self, futures: list[asyncio.Future[Tagged]], lengths: list[int], submitted: float) -> int:
        """Track a request's futures; its id (for the messages about it)."""
        request_id, self._next_id = self._next_id, self._next_id + 1
        self._requests[request_id] = OpenRequest(futures, lengths, submitted)
        self.sentences += len(futures)
        self.tokens += sum(lengths)
        return request_id

    def oldest(self) -> float | None:
        """When the longest-waiting request still owed was sent (time.perf_counter()), or None."""
        return min((r.submitted for r in self._requests.values()), default=None)

    def deliver(self, results: Sequence[tuple[SentenceKey, Tagged]]) -> Iterator[float]:
        """Resolve each sentence's future; yields the send time of each answered sentence (for its latency)."""
        for key, tagged in results:
            request = self._answered(key)
            if request is not None:
                future = request.futures[key.position]
                if not future.done():
                    future.set_result(tagged)
                yield request.submitted

    def fail(self, keys: Sequence[SentenceKey], error: Exception) -> None:
        for key in keys:
            request = self._answered(key)
            if request is not None and not request.futures[key.position].done():
                request.futures[key.position].set_exception(error)

    def cancel(self, request_id: int) -> bool:
        """Forget a request that gave up; whether it was still owed (the inference process should drop it too)."""
        request = self._requests.pop(request_id, None)
        if request is None:
            return False
        self.sentences -= request.left
        self.tokens -= request.tokens_left
        return True

    def fail_all(self, error: Exception) -> None:
        requests, self._requests, self.sentences, self.tokens = self._requests, {}, 0, 0
        for request in requests.values():
            for future in request.futures:
                if not future.done():
                    future.set_exception(error)

    def _answered(self, key: SentenceKey) -> OpenRequest | None:
        """The request one more of whose sentences is answered (None if it gave up)."""
        request = self._requests.get(key.request)
        if request is not None:
            self.sentences -= 1
            self.tokens -= request.lengths[key.position]
            request.tokens_left -= request.lengths[key.position]
            request.left -= 1
            if request.left == 0:
                del self._requests[key.request]
        return request
