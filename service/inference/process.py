"""The inference process of one model: its queue, batching, ONNX Runtime and decoding, under a GIL of its own.

Why a process: in one process, the event loop (HTTP, JSON, validation) and
the inference thread take turns on one GIL, and every batch pays for the
hand-over twice (before and after ONNX Runtime). Measured on 2 cores at
concurrency 64: both threads near 70% busy, the machine at 145% of 200%, the
throughput set by the turn-taking. With the queue and the model here, the
server process only encodes, sends one message per request and reads one per
batch; both cores work (see README, "Performance").

The messages both ways are `service.inference.messages`. A result travels as a
`Tagged`: the tags and spans, plus the per-token probabilities only when the
request asked for them (`details`: scores or top_k); arrays are most of what
pickling costs.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time
from typing import Literal, NamedTuple

from service.inference.admission import Draining, QueueFull
from service.inference.messages import (
    DRIFT_EVERY_S,
    HEARTBEAT_S,
    Alive,
    BatchDone,
    BatchReport,
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
    Result,
    SentenceKey,
    Submit,
    frame,
    unframe,
)
from service.inference.queue import BatchQueue
from service.inference.scheduling import BatchLimits, Item
from service.settings import Settings
from tagger.artifact import MODEL_FILE, ArtifactError
from tagger.encoding import Encoded, pad
from tagger.profile import Profiler
from tagger.runtime import load_runtime


class Ticket(NamedTuple):
    """What the inference process keeps of a queued sentence to answer it."""

    key: SentenceKey
    details: bool


class _Worker:
    """One thread does it all: read what has arrived, run the next batch, send its results, repeat.

    Reading between batches is when new work matters anyway, and a single
    thread means no lock hand-overs inside this process either.
    """

    def __init__(self, folder: str, settings: Settings, sock: socket.socket, files: dict[str, str] | None) -> None:
        self.sock = sock
        self.runtime = load_runtime(folder, settings.intra_threads, settings.spinning)
        # replaced on disk since the server read it: the server encodes for the version it read
        if files is not None and self.runtime.metadata.files != files:
            raise ArtifactError(
                f"{folder} now holds another version of the model than the one the server loaded "
                f"({self.runtime.metadata.files.get(MODEL_FILE, '?')[:12]}, not {files.get(MODEL_FILE, '?')[:12]}); "
                "load it again (POST /v2/repository/models/{model}/load, or TAGGER_MODEL_POLL_S) to serve it"
            )
        self.queue: BatchQueue[Ticket] = BatchQueue(self.runtime.name, BatchLimits.of(settings))
        self.inbox = bytearray()
        self.server_gone = False
        self.sent = time.monotonic()  # when a message last went to the server (heartbeats fill the silence)
        # drift statistics of the outputs, where the scores are: sent every DRIFT_EVERY_S while there are some
        self.profiler = Profiler(self.runtime.vocab, self.runtime.decoder) if settings.drift else None
        self.drift = self.profiler.counts() if self.profiler is not None else None
        self.drift_sent = time.monotonic()

    def send(self, message: Message) -> None:
        try:
            self.sock.sendall(frame(message))
        except OSError:  # the server is gone: nobody is left to answer
            self.server_gone = True
        self.sent = time.monotonic()

    def serve(self) -> None:
        """Until drained (or the server is gone): take in messages, run batches, and say Alive when silent."""
        while not self.server_gone:
            if (
                self.drift is not None
                and self.drift.chosen.any()
                and time.monotonic() - self.drift_sent >= DRIFT_EVERY_S
            ):
                self.send_drift()
            if time.monotonic() - self.sent >= HEARTBEAT_S:
                self.send(Alive())
            if self.queue.depth:
                wait: float | None = self.queue.fill_time()
            elif self.queue.draining:
                if self.drift is not None and self.drift.chosen.any():
                    self.send_drift()  # what the last batches counted, before the process goes
                self.send(Drained())
                return
            else:
                wait = HEARTBEAT_S  # idle: sleep until the server writes, or the next heartbeat is due
            if select.select([self.sock], [], [], wait)[0]:
                self.receive()
                if self.queue.fill_time() > 0:
                    continue
            batch, late = self.queue.take_now()
            if late:
                self.send(Late([item.ticket.key for item in late]))
            if batch:
                self.run(batch)

    def send_drift(self) -> None:
        assert self.profiler is not None and self.drift is not None
        self.send(DriftCounts(self.drift.to_dict()))
        self.drift, self.drift_sent = self.profiler.counts(), time.monotonic()

    def receive(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            self.server_gone = True
            return
        self.inbox += data
        for message in unframe(self.inbox):
            self.handle(message)

    def handle(self, message: Message) -> None:
        if isinstance(message, Submit):
            now = time.perf_counter()
            deadline = now + message.seconds_left
            items = [
                Item(
                    Encoded(*s),
                    Ticket(SentenceKey(message.request, i), message.details),
                    now,
                    deadline,
                    message.request,
                )
                for i, s in enumerate(message.sentences)
            ]
            try:
                self.queue.put(items)
            except (QueueFull, Draining) as err:  # the server checks first; this is the backstop
                reason: Literal["queue_full", "draining"] = "draining" if isinstance(err, Draining) else "queue_full"
                self.send(Refused([item.ticket.key for item in items], str(err), reason))
        elif isinstance(message, Cancel):
            gone = message.request
            self.queue.remove(lambda item: item.ticket.key.request == gone)
        elif isinstance(message, Drain):
            self.queue.close()

    def run(self, batch: list[Item[Ticket]]) -> None:
        padded = pad([item.sentence for item in batch])
        started = time.perf_counter()
        try:
            decoded = self.runtime.tag(padded)
        except Exception as err:  # a failed batch fails its requests, never the process
            self.send(Failed([item.ticket.key for item in batch], f"{type(err).__name__}: {err}"))
            return
        seconds = time.perf_counter() - started
        self.queue.speed.record(padded.words.size, seconds)
        if self.profiler is not None and self.drift is not None:
            self.profiler.count_output(self.drift, decoded)
        report = BatchReport(
            sentences=len(batch),
            slots=padded.words.size,
            words=int(padded.lengths.sum()),
            seconds=seconds,
            waits=tuple(started - item.enqueued for item in batch),
            depth=self.queue.depth,
        )
        results = [
            Result(item.ticket.key, d.tagged(item.ticket.details)) for item, d in zip(batch, decoded, strict=True)
        ]
        self.send(BatchDone(report, results))


def main(
    folder: str, settings: Settings, sock: socket.socket, files: dict[str, str] | None = None, nice: int = 0
) -> None:
    """Entry point of the inference process (spawned by `service.inference.process_batcher.ProcessBatcher`)."""
    # Signals are the server's business: it drains this process with a message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # blocked while we were spawned
    if nice:  # a shadow version: it runs on what CPU the serving versions leave
        os.nice(nice)
    try:
        worker = _Worker(folder, settings, sock, files)
        if settings.warmup:
            worker.queue.speed.slots_per_second = worker.runtime.warm_up()
    except Exception as err:
        with contextlib.suppress(OSError):
            sock.sendall(frame(LoadError(f"{type(err).__name__}: {err}")))
        return
    worker.send(Ready(worker.queue.speed.slots_per_second))
    worker.serve()
