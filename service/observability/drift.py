"""Drift statistics of the served models: live counts against each export's reference profile, as Prometheus sees
them and as `GET /v1/models/{model}/drift` shows them.

The statistics are `tagger.profile`'s, counted where the data is: a request's tokens (unknown to the model's
vocabulary, case, script) and sentence lengths in this process as the request is queued, the chosen tags, their
probabilities and the spans in the inference process, which has the scores (`DriftCounts` messages every half
second; answers never carry scores for this). Everything exported is a counter or a histogram per model and
version, so Prometheus sums replicas and takes rates over any window; the reference is exported beside them as
gauges (`tagger_drift_reference_*`), and the recording rules in deploy/prometheus/alerts.yml compare the two.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tagger.encoding import Vocab
from tagger.profile import CASES, LENGTH_BOUNDS, PROBABILITY_BOUNDS, SCRIPTS, Counts, Profile, TokenClasses, psi

SNAPSHOT_EVERY_S = 60.0  # the recent window's resolution
WINDOW_S = 15 * 60.0  # the recent window GET /v1/models/{model}/drift reports beside the figures since start
PENDING_SENTENCES = 256  # sentences counted in one bulk


def span_labels(output_tags: Sequence[str], spans: bool) -> tuple[str, ...]:
    """The span labels a model's answers carry (`tagger.profile.Profiler` counts the same)."""
    return tuple(sorted({t[2:] for t in output_tags if t != "O"})) if spans else ()


@dataclass
class ModelDrift:
    """Live drift counts of one served version, since it was loaded, with snapshots for a recent window."""

    model: str
    version: str
    vocab: Vocab
    counts: Counts
    reference: Profile | None
    started: float = field(default_factory=time.time)
    _classes: TokenClasses = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _snapshots: deque[tuple[float, Counts]] = field(default_factory=deque)
    _pending: list[Sequence[str]] = field(default_factory=list)  # sentences queued, not yet counted

    def __post_init__(self) -> None:
        self._classes = TokenClasses(self.vocab)
        self._snapshots.append((self.started, _copied(self.counts)))  # the state at each time: counts before it

    @classmethod
    def of(
        cls, model: str, version: str, vocab: Vocab, output_tags: Sequence[str], spans: bool, ref: Profile | None
    ) -> ModelDrift:
        return cls(model, version, vocab, Counts.empty(output_tags, span_labels(output_tags, spans)), ref)

    def count_input(self, sentences: Sequence[Sequence[str]]) -> None:
        """Count a request's tokens and sentence lengths (this process: it has the strings).

        The event loop only appends the sentences; they are counted in bulk every PENDING_SENTENCES sentences
        and before anything reads the counts, so that numpy's per-call cost is paid once per bulk, not per
        request (a request's own count cost about 9 us; in bulk about 0.2 us a token).
        """
        with self._lock:
            self._pending.extend(sentences)
            if len(self._pending) >= PENDING_SENTENCES:
                self._flush()

    def _flush(self) -> None:
        """Count the pending sentences (the lock held)."""
        if not self._pending:
            return
        sentences, self._pending = self._pending, []
        lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
        tokens = chain.from_iterable(sentences)
        codes = np.fromiter(map(self._classes.__getitem__, tokens), np.int64, int(lengths.sum()))
        self._snapshot()
        self.counts.add_codes(codes, lengths)

    def add(self, delta: Counts) -> None:
        """Add what the inference side counted (chosen tags, probabilities, spans)."""
        with self._lock:
            self.counts.merge(delta)

    def copy(self) -> Counts:
        with self._lock:
            self._flush()
            return _copied(self.counts)

    def window(self) -> tuple[float, Counts]:
        """(seconds covered, counts over the recent window): now less the oldest snapshot inside WINDOW_S."""
        with self._lock:
            self._flush()
            now, current = time.time(), _copied(self.counts)
            inside = [(t, c) for t, c in self._snapshots if now - t <= WINDOW_S]
            if not inside:
                return now - self.started, current
            since, base = inside[0]
            return now - since, _minus(current, base)

    def _snapshot(self) -> None:
        now = time.time()
        if not self._snapshots or now - self._snapshots[-1][0] >= SNAPSHOT_EVERY_S:
            self._snapshots.append((now, _copied(self.counts)))
            while self._snapshots and now - self._snapshots[0][0] > WINDOW_S + SNAPSHOT_EVERY_S:
                self._snapshots.popleft()


def _copied(counts: Counts) -> Counts:
    return Counts.from_dict(counts.to_dict())


def _minus(a: Counts, b: Counts) -> Counts:
    out = _copied(a)
    for name in ("tokens", "lengths", "chosen", "probability", "spans"):
        setattr(out, name, getattr(a, name) - getattr(b, name))
    return out


def compare(live: Profile, reference: Profile | None) -> dict[str, Any]:
    """Live figures against the reference: what GET /v1/models/{model}/drift says, as the alerts read them."""
    figures: dict[str, Any] = {
        "tokens": live.tokens,
        "sentences": live.sentences,
        "unknown_rate": round(live.unknown_rate, 6),
        "low_confidence_share": round(live.low_confidence_share, 6),
        "case_mix": _rounded(live.case_mix),
        "script_mix": _rounded({k: v for k, v in live.script_mix.items() if v}),
        "tag_shares": _rounded(live.tag_shares),
        "spans_per_100_tokens": _rounded(live.spans_per_100_tokens),
    }
    if reference is None or not live.tokens:
        return figures
    return figures | {
        "against_reference": {
            "unknown_rate_ratio": _ratio(live.unknown_rate, reference.unknown_rate),
            "low_confidence_ratio": _ratio(live.low_confidence_share, reference.low_confidence_share),
            "case_psi": round(psi(live.case_mix, reference.case_mix), 6),
            "script_psi": round(psi(live.script_mix, reference.script_mix), 6),
            "tag_psi": round(psi(live.tag_shares, reference.tag_shares), 6),
        }
    }


def _rounded(shares: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in shares.items()}


def _ratio(live: float, reference: float) -> float | None:
    return round(live / reference, 6) if reference else None


class DriftCollector(Collector):
    """The drift counters and reference gauges of every served version, read at scrape time."""

    def __init__(self, drifts: Callable[[], list[ModelDrift]]) -> None:
        self.drifts = drifts

    def collect(self) -> Iterator[Any]:
        drifts = self.drifts()
        keys = ["model", "version"]
        tokens = CounterMetricFamily("tagger_drift_tokens", "tokens tagged (drift statistics)", labels=keys)
        unknown = CounterMetricFamily(
            "tagger_drift_unknown_tokens", "tokens the model's word vocabulary does not know", labels=keys
        )
        case = CounterMetricFamily("tagger_drift_tokens_by_case", "tokens by case", labels=[*keys, "case"])
        script = CounterMetricFamily("tagger_drift_tokens_by_script", "tokens by script", labels=[*keys, "script"])
        tags = CounterMetricFamily("tagger_drift_tags", "tokens by the tag chosen", labels=[*keys, "tag"])
        spans = CounterMetricFamily("tagger_drift_spans", "spans found, by label", labels=[*keys, "label"])
        probability = HistogramMetricFamily(
            "tagger_drift_tag_probability", "the chosen tag's probability, per token", labels=keys
        )
        lengths = HistogramMetricFamily("tagger_drift_sentence_tokens", "sentences by tokens", labels=keys)
        for drift in drifts:
            at, counts = [drift.model, drift.version], drift.copy()
            by = counts.by_label()
            tokens.add_metric(at, int(counts.tokens.sum()))
            unknown.add_metric(at, by["word"]["unknown"])
            for family, name in ((case, "case"), (script, "script"), (tags, "tag"), (spans, "span")):
                for label, n in by[name].items():
                    family.add_metric([*at, label], n)
            probability.add_metric(at, _buckets(PROBABILITY_BOUNDS, counts.probability), None)
            lengths.add_metric(at, _buckets(LENGTH_BOUNDS, counts.lengths), None)
        yield from (tokens, unknown, case, script, tags, spans, probability, lengths)
        yield from _reference_gauges(drifts)


def _buckets(bounds: Sequence[float], counts: np.ndarray) -> list[tuple[str, float]]:
    """Prometheus's cumulative buckets from per-bucket counts (the last one is +Inf). No sum is exposed (the counts
    keep none), so neither is `_count`: the +Inf bucket is the count."""
    cumulative = np.cumsum(counts).tolist()
    return [(f"{b:g}", float(n)) for b, n in zip(bounds, cumulative, strict=False)] + [("+Inf", float(cumulative[-1]))]


def _reference_gauges(drifts: Sequence[ModelDrift]) -> Iterator[GaugeMetricFamily]:
    keys = ["model", "version"]
    present = GaugeMetricFamily("tagger_drift_reference_loaded", "1 if the export has a reference profile", labels=keys)
    unknown = GaugeMetricFamily("tagger_drift_reference_unknown_rate", "reference unknown-word rate", labels=keys)
    low = GaugeMetricFamily(
        "tagger_drift_reference_low_confidence_share",
        "reference share of tokens whose chosen tag's probability is at or under 0.8",
        labels=keys,
    )
    case = GaugeMetricFamily("tagger_drift_reference_case_share", "reference case mix", labels=[*keys, "case"])
    script = GaugeMetricFamily("tagger_drift_reference_script_share", "reference script mix", labels=[*keys, "script"])
    tags = GaugeMetricFamily("tagger_drift_reference_tag_share", "reference tag shares", labels=[*keys, "tag"])
    spans = GaugeMetricFamily(
        "tagger_drift_reference_spans_per_100_tokens", "reference spans per 100 tokens", labels=[*keys, "label"]
    )
    for drift in drifts:
        at, ref = [drift.model, drift.version], drift.reference
        present.add_metric(at, 0.0 if ref is None else 1.0)
        if ref is None:
            continue
        unknown.add_metric(at, ref.unknown_rate)
        low.add_metric(at, ref.low_confidence_share)
        for family, shares in (
            (case, {c: ref.case_mix.get(c, 0.0) for c in CASES}),
            (script, {s: ref.script_mix.get(s, 0.0) for s in SCRIPTS}),
            (tags, ref.tag_shares),
            (spans, ref.spans_per_100_tokens),
        ):
            for label, value in shares.items():
                family.add_metric([*at, label], value)
    yield from (present, unknown, low, case, script, tags, spans)
