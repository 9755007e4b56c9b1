"""Every message between the server and an inference process, each a NamedTuple with named fields.

The server process talks to an inference process (`service.inference.process`) over a
socket pair, in length-prefixed pickled messages (both ends are this
codebase):

    server -> worker   Submit(request, sentences, seconds_left, details)
                       Cancel(request)                  the request gave up
                       Drain()                          finish the queue, then exit
    worker -> server   Ready(slots_per_second) | LoadError(message)
                       BatchDone(report, results)       one Result per sentence run
                       Failed(keys, message)            the model raised
                       Refused(keys, message, reason)   the inference process's own queue bound
                       Late(keys)                       past the deadline, never run
                       Alive()                          nothing else sent for HEARTBEAT_S: not hung
                       DriftCounts(counts)              drift statistics of the outputs since the last ones
                       Drained()

NamedTuples, not dataclasses: they pickle as a tuple plus one reference to
their class, and the server, the busier side, pickles and unpickles one of
these per request and per batch. Deadlines travel as seconds left and
restart on arrival, so the two processes need no shared clock.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple

from tagger.decoding import Tagged

HEADER = struct.Struct("!I")  # payload length


class SentenceKey(NamedTuple):
    """One sentence of one request, as both processes name it."""

    request: int  # the server's id for the request
    position: int  # the sentence's index in the request


# One encoded sentence as it travels: word ids, case ids, char ids per word, name-list codes per word or None
# (`tagger.encoding.Encoded`'s fields).
WireSentence = tuple[Sequence[int], Sequence[int], Sequence[Sequence[int]], Sequence[Sequence[int]] | None]


class Submit(NamedTuple):
    request: int
    sentences: list[WireSentence]
    seconds_left: float  # until the request's deadline
    details: bool  # send back per-token probabilities (the request asked for scores or top_k)


class Cancel(NamedTuple):
    request: int


class Drain(NamedTuple):
    pass


class Ready(NamedTuple):
    """Loaded and warmed up."""

    slots_per_second: float | None  # padded tokens per second in warm-up (None: no warm-up)


class LoadError(NamedTuple):
    message: str


class BatchReport(NamedTuple):
    """One batch as run, for the server's metrics."""

    sentences: int
    slots: int  # padded tokens
    words: int
    seconds: float  # ONNX Runtime and decoding
    waits: tuple[float, ...]  # per sentence, seconds queued in the inference process
    depth: int  # sentences still queued there


class Result(NamedTuple):
    key: SentenceKey
    tagged: Tagged


class BatchDone(NamedTuple):
    report: BatchReport
    results: list[Result]


class Failed(NamedTuple):
    keys: list[SentenceKey]
    message: str


class Refused(NamedTuple):
    keys: list[SentenceKey]
    message: str
    reason: Literal["queue_full", "draining"]


class Late(NamedTuple):
    keys: list[SentenceKey]


class Drained(NamedTuple):
    pass


class Alive(NamedTuple):
    """A heartbeat: sent by the inference process's loop when it has sent nothing else for `HEARTBEAT_S`.

    Silence then means the loop is stuck (a stopped process, a hung batch), whatever the traffic: the server
    reads it as such without waiting for a request to go unanswered.
    """


HEARTBEAT_S = 0.5  # seconds between heartbeats of an idle inference process


class DriftCounts(NamedTuple):
    """The drift statistics the inference process counted on its outputs (chosen tags, their probabilities,
    spans: `tagger.profile.Counts.to_dict`) since it last sent them; at most one every DRIFT_EVERY_S."""

    counts: dict[str, Any]


DRIFT_EVERY_S = 0.5


ToWorker = Submit | Cancel | Drain
ToServer = Ready | LoadError | BatchDone | Failed | Refused | Late | Drained | Alive | DriftCounts
Message = ToWorker | ToServer


def frame(message: Message) -> bytes:
    """One message as bytes on the wire: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def unframe(buffer: bytearray) -> Iterator[Message]:
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
