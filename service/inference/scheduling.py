"""How batches are formed from a model's queue: fair between requests, of similar lengths, short in time.

Fairness: each batch is built around one sentence, its anchor, and the
anchor comes from each waiting request in turn (the request that anchored
longest ago, or never; among those, the earliest). A request of 256 long
sentences therefore gets one batch in turn with every other request waiting,
instead of holding the model until its last sentence ran: a small request
that arrives behind it waits for at most the batch in flight.

Shape: the other sentences of the batch, from any request, are the closest in
length to the anchor while the padded size (sentences x longest) stays within
the token budget, the share of padding within its limit and the count within
the batch size (a batch of similar lengths costs what its words cost).

Time: the token budget is also capped at what the model runs in
`max_batch_seconds` at its measured speed (`Speed`), so that the batch in
flight, which nobody can overtake, is short. The same speed lets a request
that could not finish before its deadline be refused at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from service.settings import Settings
from tagger.encoding import Encoded


@dataclass(frozen=True)
class BatchLimits:
    """How batches are formed and how much may wait: per batch, not per request (those are `Settings.max_*`)."""

    batch_sentences: int = 64
    batch_tokens: int = 4096  # padded: sentences x longest
    max_padding: float = 0.1  # largest share of padded positions in a batch (the anchor always goes)
    max_wait: float = 0.0  # seconds to wait for a fuller batch; 0 = never wait
    queue_size: int = 4096
    threads: int = 1  # in-process inference threads (TAGGER_INFERENCE_THREADS)
    max_batch_seconds: float = 0.0  # cap the padded tokens at this much of the model's measured speed; 0 = no cap

    @classmethod
    def of(cls, settings: Settings) -> BatchLimits:
        """The batch limits the settings ask for (TAGGER_BATCHING=false: one sentence a batch, no wait)."""
        return cls(
            batch_sentences=settings.max_batch_sentences if settings.batching else 1,
            batch_tokens=settings.max_batch_tokens,
            max_padding=settings.max_batch_padding,
            max_wait=settings.max_wait_ms / 1000 if settings.batching else 0.0,
            queue_size=settings.queue_size,
            threads=settings.inference_threads,
            max_batch_seconds=settings.max_batch_ms / 1000,
        )


T = TypeVar("T")  # what the submitter holds to answer an item: a future in this process, a key in an inference one


@dataclass(eq=False)
class Item(Generic[T]):
    """One queued sentence, the request it belongs to, and what its submitter needs to answer it."""

    sentence: Encoded
    ticket: T
    enqueued: float
    deadline: float
    request: int = 0  # sentences of one request share it: batches take anchors from requests in turn
    length: int = field(init=False)

    def __post_init__(self) -> None:
        self.length = len(self.sentence)


class Speed:
    """Padded tokens per second a model runs at: an exponentially weighted mean over batches big enough to tell.

    Tiny batches are mostly fixed overhead and would make the model look slow,
    so only batches of `MIN_SLOTS` padded tokens or more count; until one has
    run, the rate measured in warm-up (if any) stands.
    """

    MIN_SLOTS = 256
    WEIGHT = 0.2  # of the newest batch

    def __init__(self, slots_per_second: float | None = None) -> None:
        self.slots_per_second = slots_per_second

    def record(self, slots: int, seconds: float) -> None:
        if slots < self.MIN_SLOTS or seconds <= 0:
            return
        rate = slots / seconds
        old = self.slots_per_second
        self.slots_per_second = rate if old is None else (1 - self.WEIGHT) * old + self.WEIGHT * rate

    def seconds(self, slots: int) -> float | None:
        """How long `slots` padded tokens take at the measured speed (None: not measured yet)."""
        return None if not self.slots_per_second else slots / self.slots_per_second

    def budget(self, seconds: float) -> int | None:
        """The padded tokens that run in `seconds` (None: not measured, or no cap asked for)."""
        return None if not self.slots_per_second or seconds <= 0 else int(self.slots_per_second * seconds)


class Turns:
    """Which request anchors the next batch: the one that anchored longest ago, earliest first.

    A request seen for the first time joins the rotation as if it had anchored
    just before the latest batch: behind every request that has waited
    longer, ahead of the one just served. So a new request waits for at most
    one more batch, and a request that has had turns is never overtaken
    forever by a stream of new ones.
    """

    def __init__(self) -> None:
        self._last: dict[int, float] = {}  # request -> number of the batch it last anchored (or its place in line)
        self._batches = 0

    def anchor(self, items: Sequence[Item[T]]) -> int:
        """Index in `items` (in arrival order) of the next anchor: the first sentence of the chosen request.

        Example: requests [7, 7, 7, 9] where 7 anchored the last batch -> index 3 (request 9's turn).
        """
        best, best_key = 0, (float("inf"), 0)
        seen: set[int] = set()
        for index, item in enumerate(items):
            if item.request in seen:
                continue
            seen.add(item.request)
            key = (self._last.setdefault(item.request, self._batches - 0.5), index)
            if key < best_key:
                best, best_key = index, key
        return best

    def served(self, request: int, waiting: Callable[[], set[int]]) -> None:
        """Note that `request` anchored a batch; past 4,096 remembered, forget those not in `waiting()`."""
        self._batches += 1
        self._last[request] = float(self._batches)
        if len(self._last) > 4 * 1024:  # bounded: drop requests that are done
            still = waiting()
            self._last = {r: n for r, n in self._last.items() if r in still}


def choose(items: Sequence[Item[T]], limits: BatchLimits, anchor: int = 0, budget: int | None = None) -> list[Item[T]]:
    """Pick a batch: `items[anchor]` plus the closest in length, within the limits and the token `budget`.

    A sentence joins only if the padded size (sentences x longest) stays within
    `batch_tokens` (and `budget`, if given) and the share of padding within
    `max_padding`: a batch of similar lengths costs what its words cost, while
    one long sentence among short ones would make every row pay for its length.

    Example: lengths [10, 3, 11, 50], anchor 0, batch_tokens 40 and
    max_padding 0.5 -> the items of length 10, 11 and 3 (3 x 11 = 33 slots,
    24 words: 27% padding; adding 50 would need 200 slots).
    """
    first = items[anchor]
    tokens = limits.batch_tokens if budget is None else min(limits.batch_tokens, budget)
    rest = sorted((it for i, it in enumerate(items) if i != anchor), key=lambda it: abs(it.length - first.length))
    chosen, longest, words = [first], first.length, first.length
    for item in rest:
        if len(chosen) == limits.batch_sentences:
            break
        widest = max(longest, item.length)
        slots = widest * (len(chosen) + 1)
        if slots > tokens or 1.0 - (words + item.length) / slots > limits.max_padding:
            continue
        chosen.append(item)
        longest, words = widest, words + item.length
    return chosen


def take(
    pending: Sequence[Item[T]],
    limits: BatchLimits,
    now: float,
    gone: Callable[[Item[T]], bool],
    turns: Turns | None = None,
    budget: int | None = None,
) -> tuple[list[Item[T]], list[Item[T]], list[Item[T]]]:
    """Split a queue into (next batch, late, still waiting); items nobody waits for (`gone`) are dropped.

    With `turns`, the anchor is the next request's in turn; without, the oldest sentence.
    """
    live: list[Item[T]] = []
    late: list[Item[T]] = []
    for item in pending:
        if not gone(item):
            (late if now > item.deadline else live).append(item)
    if not live:
        return [], late, []
    anchor = turns.anchor(live) if turns is not None else 0
    batch = choose(live, limits, anchor, budget)
    taken = set(map(id, batch))
    waiting = [item for item in live if id(item) not in taken]
    if turns is not None:
        turns.served(live[anchor].request, lambda: {item.request for item in waiting})
    return batch, late, waiting
