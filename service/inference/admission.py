"""Admission: every way the inference side refuses work, and the checks that decide it, shared by both batchers.

A refusal is raised where it is detected, as one of the exceptions below; the request path turns each into its
HTTP status (`service.pipeline`): a full queue or a drain is a 503, a request too slow for its deadline a 422, work
queued past the deadline a 503 with Retry-After, a sentence that waited past it a 504.
"""

from __future__ import annotations

from service.inference.scheduling import Speed


class QueueFull(Exception):
    """The queue holds `queue_size` sentences already."""


class Draining(Exception):
    """The batcher is shutting down and takes no new work."""


class DeadlineExceeded(Exception):
    """A sentence waited past its request's deadline."""


class ProcessLost(Exception):
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


def check_room(name: str, queued: int, adding: int, limit: int) -> None:
    """Refuse (QueueFull) `adding` sentences that would take the queue past `limit` (TAGGER_QUEUE_SIZE)."""
    if queued + adding > limit:
        raise QueueFull(f"model {name!r} has {queued} sentences queued; the queue holds {limit} (TAGGER_QUEUE_SIZE)")


def shutting_down(name: str) -> Draining:
    return Draining(f"model {name!r} is shutting down")


def too_late() -> DeadlineExceeded:
    return DeadlineExceeded("waited past the request deadline")
