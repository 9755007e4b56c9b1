"""The inference process of one model: its queue, batching, ONNX Runtime and decoding, under a GIL of its own.

Why a process: in one process, the event loop (HTTP, JSON, validation) and
the inference thread take turns on one GIL, and every batch pays for the
hand-over twice (before and after ONNX Runtime). Measured on 2 cores at
concurrency 64: both threads near 70% busy, the machine at 145% of 200%, the
throughput set by the turn-taking. With the queue and the model here, the
server process only encodes, sends one message per request and reads one per
batch; both cores work (see README, "Performance").

The server process talks to this one over a socket pair, in length-prefixed
pickled messages (both ends are this codebase):

    server -> worker   ("submit", request_id, [(words, cases, chars), ...], seconds_left, details)
                       ("cancel", request_id)          the request gave up
                       ("drain",)                      finish the queue, then exit
    worker -> server   ("ready", output_tags) | ("load_error", message)
                       ("batch", BatchReport, [(request_id, index, Row), ...])
                       ("failed", [(request_id, index), ...], message)      the model raised
                       ("refused", [(request_id, index), ...], message, "queue_full" | "draining")
                       ("late", [(request_id, index), ...])   past the deadline, never run
                       ("drained",)

Deadlines travel as seconds left and restart on arrival here, so the two
processes need no shared clock. A result travels as a `Row`: the tags and
spans, plus the per-token probabilities only when the request asked for them
(`details`: scores or top_k); arrays are most of what pickling costs.
"""

from __future__ import annotations

import contextlib
import pickle
import select
import signal
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.batcher import BatchLimits, BatchQueue, Draining, QueueFull, _Item
from service.runtime import load_runtime
from tagger.decoding import Decoded, ScoredSpan
from tagger.encoding import Encoded, pad

HEADER = struct.Struct("!I")  # payload length


@dataclass(frozen=True)
class WorkerOptions:
    """What an inference process needs to serve one export folder."""

    folder: str
    limits: BatchLimits
    intra_threads: int = 1
    spinning: bool = False
    warmup: bool = True


@dataclass(frozen=True)
class BatchReport:
    """One batch as run, for the server's metrics."""

    sentences: int
    slots: int  # padded tokens
    words: int
    seconds: float  # ONNX Runtime and decoding
    waits: tuple[float, ...]  # per sentence, seconds queued here
    depth: int  # sentences still queued


# (tags, probs of the chosen tags or None, marginals or None, spans as (label, start, end, score))
Row = tuple[list[str], np.ndarray | None, np.ndarray | None, tuple[tuple[str, int, int, float], ...]]


def to_row(decoded: Decoded, details: bool) -> Row:
    spans = tuple((s.label, s.start, s.end, s.score) for s in decoded.spans)
    if details:
        return decoded.tags, decoded.probs, decoded.marginals, spans
    return decoded.tags, None, None, spans


def from_row(row: Row, output_tags: tuple[str, ...]) -> Decoded:
    """A `Decoded` as the service uses it (no tag ids; no probabilities unless they were asked for)."""
    tags, probs, marginals, spans = row
    return Decoded(
        ids=_NONE,
        tags=tags,
        probs=_NONE if probs is None else probs,
        marginals=_NONE if marginals is None else marginals,
        output_tags=output_tags,
        spans=[ScoredSpan(*span) for span in spans],
    )


_NONE = np.empty(0)


def frame(message: tuple[Any, ...]) -> bytes:
    """One message as bytes on the wire: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def unframe(buffer: bytearray) -> Iterator[tuple[Any, ...]]:
    """The complete messages at the start of `buffer`, removed from it (a partial one stays)."""
    start, size = 0, HEADER.size
    view = memoryview(buffer)
    try:
        while len(buffer) - start >= size:
            (length,) = HEADER.unpack_from(buffer, start)
            if len(buffer) - start - size < length:
                break
            yield pickle.loads(view[start + size : start + size + length])
            start += size + length
    finally:
        view.release()
        del buffer[:start]


class _Worker:
    """One thread does it all: read what has arrived, run the next batch, send its results, repeat.

    Reading between batches is when new work matters anyway, and a single
    thread means no lock hand-overs inside this process either.
    """

    def __init__(self, options: WorkerOptions, sock: socket.socket) -> None:
        self.options = options
        self.sock = sock
        self.runtime = load_runtime(options.folder, options.intra_threads, options.spinning)
        self.queue = BatchQueue(self.runtime.name, options.limits)
        self.inbox = bytearray()
        self.server_gone = False

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            self.sock.sendall(frame(message))
        except OSError:  # the server is gone: nobody is left to answer
            self.server_gone = True

    def serve(self) -> None:
        """Until drained (or the server is gone): take in messages, run batches."""
        while not self.server_gone:
            if self.queue.depth:
                wait: float | None = self.queue.fill_time()
            elif self.queue.draining:
                self.send(("drained",))
                return
            else:
                wait = None  # idle: sleep until the server writes
            if select.select([self.sock], [], [], wait)[0]:
                self.receive()
                if self.queue.fill_time() > 0:
                    continue
            batch, late = self.queue.take_now()
            if late:
                self.send(("late", [item.key[:2] for item in late]))
            if batch:
                self.run(batch)

    def receive(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            self.server_gone = True
            return
        self.inbox += data
        for message in unframe(self.inbox):
            self.handle(message)

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "submit":
            _, request, sentences, seconds_left, details = message
            now = time.perf_counter()
            deadline = now + seconds_left
            items = [_Item(Encoded(*s), None, now, deadline, (request, i, details)) for i, s in enumerate(sentences)]
            try:
                self.queue.put(items)
            except (QueueFull, Draining) as err:  # the server checks first; this is the backstop
                reason = "draining" if isinstance(err, Draining) else "queue_full"
                self.send(("refused", [item.key[:2] for item in items], str(err), reason))
        elif kind == "cancel":
            gone: int = message[1]
            self.queue.remove(lambda item: bool(item.key[0] == gone))
        elif kind == "drain":
            self.queue.close()

    def run(self, batch: list[_Item]) -> None:
        padded = pad([item.sentence for item in batch])
        started = time.perf_counter()
        try:
            decoded = self.runtime.tag(padded)
        except Exception as err:  # a failed batch fails its requests, never the process
            self.send(("failed", [item.key[:2] for item in batch], f"{type(err).__name__}: {err}"))
            return
        seconds = time.perf_counter() - started
        report = BatchReport(
            sentences=len(batch),
            slots=padded.words.size,
            words=int(padded.lengths.sum()),
            seconds=seconds,
            waits=tuple(started - item.enqueued for item in batch),
            depth=self.queue.depth,
        )
        rows = [(item.key[0], item.key[1], to_row(d, item.key[2])) for item, d in zip(batch, decoded, strict=True)]
        self.send(("batch", report, rows))


def main(options: WorkerOptions, sock: socket.socket) -> None:
    """Entry point of the inference process (spawned by `service.remote.RemoteBatcher`)."""
    # Signals are the server's business: it drains this process with a message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # blocked while we were spawned
    try:
        worker = _Worker(options, sock)
        if options.warmup:
            worker.runtime.warm_up()
    except Exception as err:
        with contextlib.suppress(OSError):
            sock.sendall(frame(("load_error", f"{type(err).__name__}: {err}")))
        return
    worker.send(("ready", worker.runtime.decoder.output_tags))
    worker.serve()
