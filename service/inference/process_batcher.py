"""A batcher whose queue and model live in an inference process of their own (`service.inference.process`).

Same face as `service.inference.in_process.InProcessBatcher` (submit -> one future per sentence,
depth, drain), so routes do not know which one they use. This side owns the
futures, the queue bound (503), the metrics and the process: it spawns it,
waits for it to load and warm up, and if it dies, fails the sentences in
flight (503, retryable), spawns a new one, and reports not ready meanwhile.

A hung process is told by its silence, not by the requests it owes: an
inference process says something at least every `HEARTBEAT_S` (a batch done,
or `Alive`), so silence means its loop is stuck (stopped, or a batch that never
ends), with or without traffic. After `UNRESPONSIVE_S` of it the model reports
not ready (a load balancer routes around it; a stop that ends soon costs no
restart); after TAGGER_INFERENCE_STALL_TIMEOUT_S it is killed and replaced. The
requests it owed cannot mark it: under light traffic each gives up (504, and
is forgotten) before any stall timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from service.inference import process as inference_process
from service.inference.admission import (
    Draining,
    LoadFailed,
    ProcessLost,
    QueueFull,
    admit,
    check_room,
    shutting_down,
    too_late,
)
from service.inference.batcher import observe_batch
from service.inference.channel import MessageChannel, signals_blocked
from service.inference.messages import (
    HEARTBEAT_S,
    BatchDone,
    Cancel,
    Drain,
    Drained,
    DriftCounts,
    Failed,
    Late,
    LoadError,
    Message,
    Ready,
    Refused,
    Submit,
    frame,
)
from service.inference.outstanding import Outstanding
from service.inference.scheduling import Speed
from service.observability.metrics import Metrics
from service.settings import Settings
from tagger.decoding import Tagged
from tagger.encoding import Encoded
from tagger.profile import Counts

log = logging.getLogger(__name__)
RESTART_DELAY_S = 1.0  # between a crashed inference process and its replacement
MAX_RESTART_DELAY_S = 60.0  # doubling up to this while processes keep dying within a minute of starting
DRAIN_TIMEOUT_S = 20.0  # for the inference process to finish its queue at shutdown before it is killed
UNRESPONSIVE_S = max(3.0, 6 * HEARTBEAT_S)  # silent this long: not ready (a batch is capped at TAGGER_MAX_BATCH_MS)


class ProcessBatcher:
    """One model's queue and inference in a child process; futures and metrics here. A `ModelBatcher`."""

    def __init__(
        self,
        name: str,
        folder: str,
        settings: Settings,
        metrics: Metrics,
        files: dict[str, str] | None = None,
        trial: bool = False,
        on_drift: Callable[[Counts], None] | None = None,
        nice: int = 0,
    ) -> None:
        self.name = name
        self._on_drift = on_drift  # takes the drift statistics the inference process counted on its outputs
        self._folder = folder
        self._files = files  # the sha256s the server read: an inference process serving other files refuses
        self._trial = trial  # a new version on trial: no restart if its first inference process fails
        self._nice = nice  # the inference process's scheduling niceness (a shadow's: TAGGER_SHADOW_NICE)
        self._settings = settings
        self._metrics = metrics
        self._open = Outstanding()  # requests sent and not yet answered or given up
        self._speed = Speed()  # of the inference process: from warm-up, then from its batch reports
        self._transport: asyncio.Transport | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._ready: asyncio.Future[None] | None = None
        self._first: asyncio.Future[None] | None = None  # the first inference process: ready, or why it is not
        self._drained: asyncio.Future[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._draining = False
        self._backlog: list[bytes] = []  # written while no inference process is connected
        self._stop = asyncio.Event()  # set by drain: wakes the supervisor from a restart delay
        self._stall_timeout = settings.inference_stall_timeout_s
        self._unresponsive = min(UNRESPONSIVE_S, self._stall_timeout)
        self._heard = time.monotonic()  # last message from the inference process (it sends one every HEARTBEAT_S)
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Sentences submitted and not yet answered (queued or in the batch running)."""
        return self._open.sentences

    @property
    def available(self) -> bool:
        """An inference process is up, warmed up and heard from lately, and no drain has started."""
        return self._up and time.monotonic() - self._heard <= self._unresponsive

    @property
    def _up(self) -> bool:
        """An inference process has said it is ready, and no drain has started (silent or not)."""
        return self._ready is not None and self._ready.done() and not self._draining

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn the inference process and keep one running until `drain`; call from the serving event loop."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._first = loop.create_future()
        self._first.add_done_callback(lambda f: f.cancelled() or f.exception())  # read or not, no warning
        self._supervisor = loop.create_task(self._supervise())
        self._watchdog = loop.create_task(self._watch())

    async def ready(self) -> None:
        """Wait until the inference process has loaded and warmed up its model."""
        assert self._ready is not None, "ProcessBatcher.start() was not called"
        await asyncio.shield(self._ready)

    async def loaded(self) -> None:
        """Wait until the first inference process is ready; raise `LoadFailed` if it cannot load the model.

        `ready` waits through restarts (a model served since start-up keeps
        being retried); a new version on trial is given one chance.
        """
        assert self._first is not None, "ProcessBatcher.start() was not called"
        await asyncio.shield(self._first)

    def submit(
        self, sentences: Sequence[Encoded], deadline: float, details: bool = True
    ) -> list[asyncio.Future[Tagged]]:
        """Queue sentences (all or none); each future resolves to that sentence's `Tagged`.

        Without `details` the probabilities stay in the inference process (the
        result has tags and spans only): most requests want tags alone.
        """
        if self._draining:
            raise shutting_down(self.name)
        check_room(self.name, self._open.sentences, len(sentences), self._settings.queue_size)
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        lengths = [len(s) for s in sentences]
        admit(self.name, self._speed, self._open.tokens, sum(lengths), deadline - now)
        futures: list[asyncio.Future[Tagged]] = [loop.create_future() for _ in sentences]
        request_id = self._open.add(futures, lengths, now)
        # plain tuples: a dataclass instance costs pickle twice the time on this, the busier side
        encoded = [(s.words, s.cases, s.chars, s.gazetteer) for s in sentences]  # gazetteer: None, most models
        self._write(frame(Submit(request_id, encoded, deadline - now, details)))

        # the request gives up by cancelling its futures (deadline, disconnect): forget the rest of it there too
        def on_done(done: asyncio.Future[Any]) -> None:
            if done.cancelled():
                self._cancel(request_id)

        for future in futures:
            future.add_done_callback(on_done)
        return futures

    def _write(self, data: bytes) -> None:
        """To the inference process; while one is starting, kept until it is connected (the deadline still runs).

        A socket already closing is one whose process just died, before `_run_process` has heard: kept too, and
        failed with the rest when it has (503 `inference_restarting`). uvloop raises on a write there, which made
        such a request a 500 and closed its client's connection (benchmarks/chaos.py).
        """
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
        else:
            self._backlog.append(data)

    async def drain(self) -> None:
        """Refuse new work, let the inference process finish everything queued, then wait for it to exit."""
        self._draining = True
        self._stop.set()
        if self._drained is not None and not self._drained.done():
            self._write(frame(Drain()))
            timeout = max(DRAIN_TIMEOUT_S, self._settings.request_timeout_s + 5)  # what it was given may finish
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), timeout)
            except TimeoutError:
                log.error("model %r: the inference process did not finish in %g s; killing it", self.name, timeout)
                self._kill()
        if self._supervisor is not None:
            await self._supervisor
        if self._watchdog is not None:
            # dropped as well: its CancelledError's traceback holds `_watch`'s frame, which holds this batcher (a
            # cycle that kept each stopped version in memory until a full garbage collection)
            self._watchdog.cancel()
            self._watchdog = None
        self._fail_all(shutting_down(self.name))

    async def _supervise(self) -> None:
        """Run the inference process; replace it whenever it dies (backing off while it dies young), until drained."""
        delay = RESTART_DELAY_S / 2
        while not self._draining:
            started = time.monotonic()
            try:
                exitcode: int | None = await self._run_process()
            except asyncio.CancelledError:  # the server is going down without a drain: leave no process behind
                self._kill()
                raise
            except Exception as err:  # spawning or connecting failed (memory, file descriptors): try again
                log.exception("model %r: cannot start its inference process", self.name)
                if self._first is not None and not self._first.done():
                    self._first.set_exception(LoadFailed(f"cannot start its inference process: {err}"))
                exitcode = None
            if self._draining:
                return
            if self._trial and self._first is not None and self._first.done() and self._first.exception():
                return  # a version on trial that never got ready: refused, not restarted (nor counted as one)
            log.error("model %r: inference process exited (code %s); restarting", self.name, exitcode)
            self._metrics.inference_restarts.labels(self.name).inc()
            if self._ready is not None and self._ready.done():
                self._ready = asyncio.get_running_loop().create_future()
            lived = time.monotonic() - started
            delay = RESTART_DELAY_S if lived > MAX_RESTART_DELAY_S else min(2 * delay, MAX_RESTART_DELAY_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _run_process(self) -> int | None:
        """Spawn one inference process, serve through it until it exits, fail what it left unanswered."""
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # fork would copy this process's threads and loop
        ours, theirs = socket.socketpair()
        process = context.Process(
            target=inference_process.main,
            args=(self._folder, self._settings, theirs, self._files, self._nice),
            name=f"tagger-{self.name}",
            daemon=True,
        )
        with signals_blocked():  # inherited: a Ctrl-C while it starts up stays the server's business
            process.start()
        theirs.close()
        self._process = process
        self._drained = loop.create_future()
        transport: asyncio.BaseTransport | None = None
        try:
            transport, connection = await loop.create_unix_connection(
                lambda: MessageChannel(self._on_message), sock=ours
            )
            self._transport = transport  # type: ignore[assignment]
            transport.writelines(self._backlog)  # type: ignore[attr-defined]
            self._backlog.clear()
            await connection.lost
        finally:
            self._transport = None
            if transport is not None:
                transport.close()  # the process sees end of stream and exits
            else:
                ours.close()
        await asyncio.to_thread(process.join)
        exitcode = process.exitcode
        self._process = None  # first: `pid` (read by the metrics, from any thread) must not see a closed process
        process.close()  # its pipes now, not whenever the garbage collector finds it (issue 30 item 5)
        if self._first is not None and not self._first.done():
            self._first.set_exception(LoadFailed(f"its inference process exited (code {exitcode}) before it was ready"))
        if not self._drained.done():
            self._drained.set_result(None)
        self._fail_all(ProcessLost(f"model {self.name!r}: its inference process exited (code {exitcode})"))
        return exitcode

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()

    async def _watch(self) -> None:
        """Kill a ready inference process silent for `stall_timeout` seconds, owing answers or not.

        It sends a message at least every `HEARTBEAT_S` while its loop runs
        (a batch is capped at TAGGER_MAX_BATCH_MS), so silence that long means
        it hangs (a deadlock, a stopped process). Killed, it is replaced like a
        crashed one; `available` turned false long before (`UNRESPONSIVE_S`).
        """
        while not self._draining:
            await asyncio.sleep(min(0.5, self._stall_timeout / 4))
            silent = time.monotonic() - self._heard
            if self._up and silent > self._stall_timeout:  # ready: loading and warm-up are over
                log.error("model %r: inference process silent %.0f s; killed and replaced", self.name, silent)
                self._kill()
                self._ready = asyncio.get_running_loop().create_future()  # not ready until the replacement is

    def _on_message(self, message: Message) -> None:
        self._heard = time.monotonic()
        if isinstance(message, BatchDone):
            self._deliver(message)
        elif isinstance(message, Failed):
            self._open.fail(message.keys, RuntimeError(message.message))
        elif isinstance(message, Refused):  # the inference process's own bound: a retryable 503, like ours
            error = Draining(message.message) if message.reason == "draining" else QueueFull(message.message)
            self._open.fail(message.keys, error)
        elif isinstance(message, Late):
            self._open.fail(message.keys, too_late())
        elif isinstance(message, Ready):
            if message.slots_per_second:
                self._speed.slots_per_second = message.slots_per_second
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
        elif isinstance(message, LoadError):
            log.error("model %r: the inference process cannot load %s: %s", self.name, self._folder, message.message)
            if self._first is not None and not self._first.done():
                self._first.set_exception(LoadFailed(message.message))
        elif isinstance(message, DriftCounts):
            if self._on_drift is not None:
                self._on_drift(Counts.from_dict(message.counts))
        elif isinstance(message, Drained) and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _deliver(self, done: BatchDone) -> None:
        m, name, report = self._metrics, self.name, done.report
        observe_batch(m, name, report.sentences, report.slots, report.words, report.seconds)
        self._speed.record(report.slots, report.seconds)
        m.queue_depth.labels(name).set(report.depth)
        queue_wait, latency = m.queue_wait.labels(name), m.sentence_latency.labels(name)
        for wait in report.waits:
            queue_wait.observe(wait)
        now = time.perf_counter()
        for submitted in self._open.deliver(done.results):
            latency.observe(now - submitted)

    def _fail_all(self, error: Exception) -> None:
        """Answer every open request with `error`; nothing written for them may reach a later process."""
        self._backlog.clear()
        self._open.fail_all(error)
        self._metrics.queue_depth.labels(self.name).set(0)

    def _cancel(self, request_id: int) -> None:
        if self._open.cancel(request_id):
            self._write(frame(Cancel(request_id)))
