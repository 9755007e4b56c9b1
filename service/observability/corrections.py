"""Corrections and the review queue in Prometheus: what people corrected, per model and served version.

Two views of one figure, the share of served tags people changed (1 minus it: a live accuracy estimate of the
version, on the sentences people chose to correct, so a lower bound on the least confident ones):

- counters of this process, counted as each correction is stored: `tagger_corrections_received_total` (new or a
  duplicate of one stored before), `tagger_correction_tokens_total` (tokens compared against the tags the serving
  version gives them) and `tagger_correction_tokens_changed_total`; Prometheus sums replicas and takes rates, so
  a panel shows the estimate over any recent window;
- gauges of the whole database (every replica's corrections, surviving restarts), read by the corrections
  thread every 30 s, never at scrape time: `tagger_corrections_stored`, `tagger_corrections_stored_tokens` and
  `tagger_corrections_stored_tokens_changed` (replicas report the same figures: take max, not sum).

The review queue: `tagger_review_sentences_total{outcome="kept|dropped|failed"}` (dropped: the writer's buffer
full; failed: the database down) and `tagger_review_backlog`. Labels are model names, versions and outcomes,
never a sentence's contents or a corrector's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# (model, version, corrections, tokens compared, tokens changed), as `service.corrections.records.Counts` holds them
StoredCounts = tuple[str, str, int, int, int]


@dataclass(frozen=True)
class CorrectionMetrics:
    """The counters the correction routes update, in the service's registry."""

    received: Counter
    tokens: Counter
    tokens_changed: Counter

    def count(self, model: str, version: str, new: bool, compared: int, changed: int) -> None:
        """One correction stored (`new`) or found stored before; a new one's tokens compared and changed."""
        self.received.labels(model, version, "new" if new else "duplicate").inc()
        if new and compared:
            self.tokens.labels(model, version).inc(compared)
            self.tokens_changed.labels(model, version).inc(changed)


def create_correction_metrics(registry: CollectorRegistry) -> CorrectionMetrics:
    labels = ["model", "version"]
    return CorrectionMetrics(
        received=Counter(
            "tagger_corrections_received",
            "corrections received and stored, by model, the version serving and outcome (new, duplicate)",
            [*labels, "outcome"],
            registry=registry,
        ),
        tokens=Counter(
            "tagger_correction_tokens",
            "tokens of new corrections compared against the tags the serving version gives them",
            labels,
            registry=registry,
        ),
        tokens_changed=Counter(
            "tagger_correction_tokens_changed",
            "tokens of new corrections whose tag a person changed from the serving version's",
            labels,
            registry=registry,
        ),
    )


class ReviewCollector(Collector):
    """The review queue's outcomes and backlog, and the database's counts, read from plain figures."""

    def __init__(
        self,
        outcomes: Callable[[], Mapping[tuple[str, str], int]],
        backlog: Callable[[], int],
        stored: Callable[[], Sequence[StoredCounts]],
    ) -> None:
        self._outcomes, self._backlog, self._stored = outcomes, backlog, stored

    def collect(self) -> Iterator[Metric]:
        sentences = CounterMetricFamily(
            "tagger_review_sentences",
            "served sentences sampled for the review queue, by outcome: kept, dropped (buffer full), failed (database "
            "down)",
            labels=["model", "outcome"],
        )
        for (model, outcome), value in sorted(dict(self._outcomes()).items()):
            sentences.add_metric([model, outcome], value)
        yield sentences
        yield GaugeMetricFamily(
            "tagger_review_backlog", "sampled sentences waiting for the database writer", value=self._backlog()
        )
        families = [
            GaugeMetricFamily(name, help_text, labels=["model", "version"])
            for name, help_text in (
                ("tagger_corrections_stored", "corrections in the database, by model and the version corrected"),
                ("tagger_corrections_stored_tokens", "tokens of stored corrections compared against the served tags"),
                ("tagger_corrections_stored_tokens_changed", "tokens of stored corrections a person changed"),
            )
        ]
        for model, version, corrections, compared, changed in self._stored():
            for family, value in zip(families, (corrections, compared, changed), strict=True):
                family.add_metric([model, version], value)
        yield from families
