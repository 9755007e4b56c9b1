"""What the request path and the app use of a model's batcher, wherever its inference runs.

Two batchers, siblings behind this one face: `service.inference.process_batcher.ProcessBatcher` (the default: the
queue, batching and the model in an inference process of its own, `service.inference.process`) and
`service.inference.in_process.InProcessBatcher` (TAGGER_INFERENCE_PROCESS=false: a thread of the server process).
Both queue with `service.inference.queue.BatchQueue` and refuse through `service.inference.admission`. There is no
fixed window either way: work is taken the moment the model is free, so a lone request on an idle server runs at
once, and under load the queue fills while the previous batch runs, which is what makes the next batch large.
Nothing in this package knows HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from service.observability.metrics import Metrics
from tagger.decoding import Tagged
from tagger.encoding import Encoded


class ModelBatcher(Protocol):
    """What routes and the app use of a model's batcher, wherever its inference runs."""

    name: str

    @property
    def depth(self) -> int:
        """Sentences submitted and not yet answered."""

    @property
    def available(self) -> bool:
        """Ready to take work (warmed up, not draining)."""

    @property
    def pid(self) -> int | None:
        """The inference process, or None when the model runs in this process."""

    def start(self) -> None:
        """Start inference; call from the serving event loop."""

    async def ready(self) -> None:
        """Return once the model is loaded and warmed up."""

    async def loaded(self) -> None:
        """Like `ready`, for a new version on trial: raise `LoadFailed` rather than retry if it cannot load."""

    def submit(
        self, sentences: Sequence[Encoded], deadline: float, details: bool = True
    ) -> list[asyncio.Future[Tagged]]:
        """Queue sentences (all or none): one future per sentence (QueueFull, Draining if refused)."""

    async def drain(self) -> None:
        """Refuse new work, finish what is queued, stop."""


def observe_batch(metrics: Metrics, name: str, sentences: int, slots: int, words: int, seconds: float) -> None:
    """Record one batch run: its inference time, size, padded size and padding share."""
    metrics.inference_time.labels(name).observe(seconds)
    metrics.batch_sentences.labels(name).observe(sentences)
    metrics.batch_tokens.labels(name).observe(slots)
    metrics.padding_ratio.labels(name).observe(1.0 - words / slots)
    metrics.sentences.labels(name).inc(sentences)
    metrics.tokens.labels(name).inc(words)
