"""The batcher on its own: how it packs batches, and what happens to work nobody waits for."""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
import pytest

from service.inference.admission import DeadlineExceeded, Draining, QueueFull
from service.inference.in_process import InProcessBatcher
from service.inference.scheduling import BatchLimits, Item, choose
from service.observability.metrics import create_metrics
from tagger.encoding import Batch, Encoded

pytestmark = pytest.mark.anyio


def sentence(n: int, first: int = 2) -> Encoded:
    words = np.arange(first, first + n, dtype=np.int64)
    return Encoded(words=words.tolist(), cases=[1] * n, chars=[[2, 3]] * n)


class Recorder:
    """A fake model: scores are the word ids, so every row can be traced back to its sentence."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    def __call__(self, batch: Batch) -> list[np.ndarray]:
        time.sleep(self.delay)
        self.batches.append(batch.lengths.tolist())
        return [row[:n] for row, n in zip(batch.words, batch.lengths, strict=True)]


def items(lengths: list[int]) -> list[Item]:
    loop = asyncio.new_event_loop()
    try:
        return [Item(sentence(n), loop.create_future(), 0.0, 1e9) for n in lengths]
    finally:
        loop.close()


def test_choose_keeps_the_oldest_and_packs_similar_lengths() -> None:
    chosen = choose(items([10, 3, 11, 50]), BatchLimits(batch_tokens=40, max_padding=0.5))
    assert [it.length for it in chosen] == [10, 11, 3]


def test_choose_keeps_padding_under_its_limit() -> None:
    chosen = choose(items([20, 4, 19, 21, 6, 20]), BatchLimits(max_padding=0.1))
    assert sorted(it.length for it in chosen) == [19, 20, 20, 21]  # 80 words in 84 slots


def test_choose_respects_the_batch_size() -> None:
    chosen = choose(items([5] * 10), BatchLimits(batch_sentences=4))
    assert len(chosen) == 4


def test_choose_always_takes_the_oldest_even_when_it_alone_fills_the_budget() -> None:
    chosen = choose(items([100, 1, 1]), BatchLimits(batch_tokens=100))
    assert [it.length for it in chosen] == [100]


async def run_batcher(limits: BatchLimits, model: Recorder) -> InProcessBatcher:
    batcher = InProcessBatcher("m", model, limits, create_metrics())
    batcher.start()
    return batcher


async def test_concurrent_requests_share_batches_and_get_their_own_rows() -> None:
    model = Recorder(delay=0.02)
    batcher = await run_batcher(BatchLimits(batch_sentences=64, batch_tokens=4096), model)
    requests = [[sentence(n, first=100 * i) for n in (3, 5)] for i in range(20)]
    futures = [batcher.submit(r, time.perf_counter() + 5) for r in requests]
    results = [await asyncio.gather(*f) for f in futures]
    for i, (first, second) in enumerate(results):
        assert first.tolist() == [100 * i + k for k in range(3)]
        assert second.tolist() == [100 * i + k for k in range(5)]
    assert len(model.batches) < 20  # the first runs alone, the rest queue up behind it
    await batcher.drain()


async def test_a_lone_request_runs_at_once_without_a_window() -> None:
    batcher = await run_batcher(BatchLimits(max_wait=0.0), Recorder())
    started = time.perf_counter()
    (future,) = batcher.submit([sentence(4)], time.perf_counter() + 5)
    await future
    assert batcher.depth == 0 and time.perf_counter() - started < 1.0  # generous: no fixed window is added
    await batcher.drain()


async def test_a_full_queue_refuses_the_whole_request() -> None:
    batcher = InProcessBatcher(
        "m", Recorder(), BatchLimits(queue_size=3), create_metrics()
    )  # not started: nothing drains
    batcher.submit([sentence(1), sentence(1)], time.perf_counter() + 5)
    with pytest.raises(QueueFull, match="the queue holds 3"):
        batcher.submit([sentence(1), sentence(1)], time.perf_counter() + 5)
    assert batcher.depth == 2


async def test_sentences_past_their_deadline_fail_without_running() -> None:
    model = Recorder()
    batcher = InProcessBatcher("m", model, BatchLimits(), create_metrics())
    (late,) = batcher.submit([sentence(2)], deadline=time.perf_counter() - 1)
    batcher.start()
    with pytest.raises(DeadlineExceeded):
        await late
    assert model.batches == []
    await batcher.drain()


async def test_cancelled_sentences_cost_no_compute() -> None:
    model = Recorder()
    batcher = InProcessBatcher("m", model, BatchLimits(), create_metrics())
    gone = batcher.submit([sentence(7)], time.perf_counter() + 5)
    kept = batcher.submit([sentence(2)], time.perf_counter() + 5)
    gone[0].cancel()  # the client went away
    batcher.start()
    await kept[0]
    assert model.batches == [[2]]
    await batcher.drain()


async def test_drain_finishes_everything_accepted_then_refuses_new_work() -> None:
    model = Recorder(delay=0.01)
    batcher = await run_batcher(BatchLimits(batch_sentences=2), model)
    futures = [f for _ in range(6) for f in batcher.submit([sentence(3)], time.perf_counter() + 5)]
    await batcher.drain()
    assert all(f.done() and not f.cancelled() for f in futures)
    with pytest.raises(Draining):
        batcher.submit([sentence(1)], time.perf_counter() + 5)


async def test_a_failing_batch_fails_its_requests_but_not_the_worker() -> None:
    calls = 0

    def flaky(batch: Batch) -> list[np.ndarray]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return list(batch.words)

    batcher = InProcessBatcher("m", flaky, BatchLimits(batch_sentences=1), create_metrics())
    batcher.start()
    (first,) = batcher.submit([sentence(1)], time.perf_counter() + 5)
    with pytest.raises(RuntimeError, match="boom"):
        await first
    (second,) = batcher.submit([sentence(1)], time.perf_counter() + 5)
    assert (await second).shape == (1,)
    await batcher.drain()


async def test_max_wait_lets_a_batch_fill_up() -> None:
    model = Recorder()
    batcher = await run_batcher(BatchLimits(max_wait=0.2, batch_sentences=4), model)
    first = batcher.submit([sentence(2)], time.perf_counter() + 5)
    await asyncio.sleep(0.01)
    rest = batcher.submit([sentence(2), sentence(2), sentence(2)], time.perf_counter() + 5)
    await asyncio.gather(*first, *rest)
    assert model.batches == [[2, 2, 2, 2]]
    await batcher.drain()


# --- fairness between requests, and requests that cannot make their deadline ---------------------


def test_each_request_anchors_a_batch_in_turn() -> None:
    from service.inference.scheduling import Turns, take

    loop = asyncio.new_event_loop()
    big = [Item(sentence(30), loop.create_future(), 0.0, 1e9, request=1) for _ in range(6)]
    small = [Item(sentence(3), loop.create_future(), 0.1, 1e9, request=2)]
    loop.close()
    limits, turns = BatchLimits(batch_tokens=60, max_padding=0.5), Turns()
    first, _, waiting = take(big + small, limits, 0.0, lambda item: False, turns)
    assert [item.request for item in first] == [1, 1]  # the big request arrived first: its turn
    second, _, waiting = take(waiting, limits, 0.0, lambda item: False, turns)
    assert second[0] is small[0]  # then the small one, though four of the big one's sentences are older
    third, _, _ = take(waiting, limits, 0.0, lambda item: False, turns)
    assert {item.request for item in third} == {1}


def test_a_time_budget_caps_the_padded_size_of_a_batch() -> None:
    from service.inference.scheduling import Speed

    speed = Speed(slots_per_second=10_000.0)
    assert speed.budget(0.05) == 500 and speed.seconds(2_000) == 0.2
    chosen = choose(items([100] * 10), BatchLimits(batch_tokens=4096), budget=speed.budget(0.05))
    assert len(chosen) == 5  # 5 x 100 slots fit 50 ms at 10k slots/s
    assert len(choose(items([900]), BatchLimits(), budget=500)) == 1  # the anchor always goes


def test_a_request_its_deadline_cannot_cover_is_refused_at_once() -> None:
    from service.inference.admission import Overloaded, TooSlow, admit
    from service.inference.scheduling import Speed

    speed = Speed(slots_per_second=1_000.0)
    admit("m", Speed(), 10**9, 10**9, 1.0)  # nothing measured yet: nothing refused on a guess
    admit("m", speed, 0, 900, 1.0)
    with pytest.raises(TooSlow, match=r"2000 tokens; .* about 2\.0 s, past the 1 s deadline .* at most about 1000"):
        admit("m", speed, 0, 2_000, 1.0)
    with pytest.raises(Overloaded, match=r"about 0\.5 s of work queued") as caught:
        admit("m", speed, 500, 600, 1.0)
    assert caught.value.retry_after == pytest.approx(0.1)


def test_a_stream_of_new_requests_never_starves_one_that_has_had_its_turn() -> None:
    from service.inference.scheduling import Turns, take

    loop = asyncio.new_event_loop()
    turns, limits = Turns(), BatchLimits(batch_tokens=30, max_padding=0.0)
    waiting = [Item(sentence(30), loop.create_future(), 0.0, 1e9, request=0) for _ in range(10)]  # one a batch
    anchors, next_request = [], 1
    for _ in range(30):
        waiting += [Item(sentence(3), loop.create_future(), 0.0, 1e9, request=next_request)]  # a new one each batch
        next_request += 1
        batch, _, waiting = take(waiting, limits, 0.0, lambda item: False, turns)
        anchors.append(batch[0].request)
    loop.close()
    long_turns = [i for i, request in enumerate(anchors) if request == 0]
    assert len(long_turns) == 10  # all ten of its sentences ran
    assert max(b - a for a, b in itertools.pairwise(long_turns)) <= 2  # never more than one apart


def test_the_queue_gives_a_request_behind_a_big_one_the_next_batch() -> None:
    """The queue's own order (what both batchers and the inference process take batches from): a small request
    that arrives behind a big one runs in the next batch, not after the big one's last sentence."""
    from service.inference.queue import BatchQueue

    loop = asyncio.new_event_loop()
    queue: BatchQueue[asyncio.Future[object]] = BatchQueue("m", BatchLimits(batch_tokens=60, max_padding=0.1))
    queue.put([Item(sentence(30), loop.create_future(), 0.0, 1e9, request=1) for _ in range(8)])
    queue.put([Item(sentence(3), loop.create_future(), 0.1, 1e9, request=2)])
    order = []
    while queue.depth:
        batch, _ = queue.take_now()
        order.append(sorted({item.request for item in batch}))
    loop.close()
    assert order[0] == [1] and order[1] == [2], order  # oldest-first would run the big one's 8 sentences first
    assert len(order) == 5  # and the big one still goes two sentences a batch


async def test_an_inference_process_refuses_at_once_what_its_queued_work_would_keep_past_the_deadline() -> None:
    """Admission counts the tokens an inference process owes (ProcessBatcher), not only the request's own."""
    from service.inference.admission import Overloaded
    from service.inference.process_batcher import ProcessBatcher
    from service.settings import Settings

    batcher = ProcessBatcher("m", "unused", Settings(), create_metrics())  # not started: what it is sent waits
    batcher._speed.slots_per_second = 1_000.0  # as measured in warm-up
    first = batcher.submit([sentence(300), sentence(300)], time.perf_counter() + 1.0)  # 0.6 s alone: admitted
    with pytest.raises(Overloaded, match=r"about 0\.6 s of work queued") as refused:
        batcher.submit([sentence(500)], time.perf_counter() + 1.0)  # 0.5 s alone, 1.1 s behind the first
    assert refused.value.retry_after == pytest.approx(0.1, abs=0.02)
    assert batcher.depth == 2  # the refused request was never queued
    for future in first:
        future.cancel()  # the first request gives up: its work is no longer ahead
    await asyncio.sleep(0)
    assert batcher.depth == 0
    batcher.submit([sentence(500)], time.perf_counter() + 1.0)


class ClosedTransport:
    """The socket to an inference process as uvloop leaves it once the process died, before the batcher has
    heard: closing, and raising on write (asyncio's only logs)."""

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <UnixTransport closed=True>; the handler is closed")


async def test_a_request_sent_as_its_inference_process_dies_is_refused_as_restarting_not_failed() -> None:
    """Found by benchmarks/chaos.py: SIGKILLed under load, 17 requests in a minute answered 500 (and their
    connections closed) for writing to the dead process's socket in the moment before its exit was handled."""
    from service.inference.admission import ProcessLost
    from service.inference.process_batcher import ProcessBatcher
    from service.settings import Settings

    batcher = ProcessBatcher("m", "unused", Settings(), create_metrics())
    batcher._transport = ClosedTransport()  # type: ignore[assignment]
    futures = batcher.submit([sentence(3)], time.perf_counter() + 5)  # no RuntimeError: kept, like while starting
    futures[0].cancel()  # its Cancel is written the same way
    (second,) = batcher.submit([sentence(2)], time.perf_counter() + 5)
    batcher._fail_all(ProcessLost("model 'm': its inference process exited (code -9)"))  # as the exit is handled
    with pytest.raises(ProcessLost):  # a 503 inference_restarting with Retry-After
        await second
    assert batcher.depth == 0
