"""How a shadow version agrees with the version serving, on the same live sentences: what a tagger's owner reads
before promoting a candidate.

Per (model, serving version, shadow version): sentences compared and copies dropped, token tag agreement, span
F1 of the shadow against the serving version by label (a span agrees when label, start and end agree), the tag
pairs that differ, each side's mean sentence confidence and latency, and a bounded sample of sentences where
they disagree. Counters, so Prometheus sums replicas; `summary()` is the control route's answer.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tagger.decoding import Tagged

SAMPLE_SIZE = 20  # disagreeing sentences kept for the summary (the most recent)
TOP_CHANGES = 10  # tag pairs listed in the summary
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SIDES = ("serving", "shadow")


@dataclass
class Agreement:
    """The running comparison of one shadow version with the version it shadows."""

    model: str
    serving: str  # version
    shadow: str  # version
    sentences: int = 0
    dropped: int = 0  # copies not run: the shadow's queue was full, or it refused them
    tokens: int = 0
    agreeing: int = 0  # tokens given the same tag
    spans: dict[str, Counter[str]] = field(default_factory=lambda: {s: Counter() for s in (*SIDES, "both")})
    changes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (serving tag, shadow tag) -> tokens
    confidence: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SIDES, 0.0))  # sums
    latency: dict[str, np.ndarray] = field(
        default_factory=lambda: {s: np.zeros(len(LATENCY_BOUNDS) + 1, dtype=np.int64) for s in SIDES}
    )
    latency_sum: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SIDES, 0.0))
    sample: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=SAMPLE_SIZE))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        tokens: Sequence[Sequence[str]],
        serving: Sequence[Tagged],
        shadow: Sequence[Tagged],
        seconds: tuple[float, float],
    ) -> None:
        """One request's sentences as both versions tagged them, and how long each took (serving, shadow)."""
        with self._lock:
            for words, one, other in zip(tokens, serving, shadow, strict=True):
                self._sentence(words, one, other)
            for side, spent in zip(SIDES, seconds, strict=True):
                self.latency[side][int(np.searchsorted(LATENCY_BOUNDS, spent, side="left"))] += 1
                self.latency_sum[side] += spent

    def _sentence(self, words: Sequence[str], serving: Tagged, shadow: Tagged) -> None:
        self.sentences += 1
        self.tokens += len(words)
        same = True
        for a, b in zip(serving.tags, shadow.tags, strict=True):
            if a == b:
                self.agreeing += 1
            else:
                self.changes[(a, b)] += 1
                same = False
        found = {
            side: {(s.label, s.start, s.end) for s in t.spans} for side, t in zip(SIDES, (serving, shadow), strict=True)
        }
        for side, spans in found.items():
            self.spans[side].update(label for label, _, _ in spans)
        self.spans["both"].update(label for label, _, _ in found["serving"] & found["shadow"])
        for side, tagged in zip(SIDES, (serving, shadow), strict=True):
            self.confidence[side] += tagged.confidence if tagged.confidence is not None else 0.0
        if not same or found["serving"] != found["shadow"]:
            self.sample.append({"tokens": list(words), "serving": list(serving.tags), "shadow": list(shadow.tags)})

    def drop(self, sentences: int) -> None:
        with self._lock:
            self.dropped += sentences

    @property
    def tag_agreement(self) -> float | None:
        return self.agreeing / self.tokens if self.tokens else None

    def confidence_ratio(self) -> float | None:
        """The shadow's mean sentence confidence over the serving version's."""
        serving = self.confidence["serving"]
        return self.confidence["shadow"] / serving if serving else None

    def summary(self) -> dict[str, Any]:
        with self._lock:
            labels = sorted(set(self.spans["serving"]) | set(self.spans["shadow"]))
            span_f1 = {
                label: _f1(self.spans["both"][label], self.spans["serving"][label], self.spans["shadow"][label])
                for label in labels
            }
            every = _f1(*(sum(self.spans[s].values()) for s in ("both", "serving", "shadow")))
            return {
                "model": self.model,
                "serving_version": self.serving,
                "shadow_version": self.shadow,
                "sentences": self.sentences,
                "dropped": self.dropped,
                "tokens": self.tokens,
                "tag_agreement": _round(self.tag_agreement),
                "span_f1": _round(every) if labels else None,
                "span_f1_by_label": {k: _round(v) for k, v in span_f1.items()},
                "spans": {side: dict(self.spans[side]) for side in (*SIDES, "both")},
                "differing_tags": [
                    {"serving": a, "shadow": b, "tokens": n} for (a, b), n in self.changes.most_common(TOP_CHANGES)
                ],
                "mean_confidence": {
                    s: _round(self.confidence[s] / self.sentences if self.sentences else None) for s in SIDES
                },
                "mean_latency_s": {
                    s: _round(self.latency_sum[s] / self.sentences if self.sentences else None) for s in SIDES
                },
                "disagreeing_sentences": list(self.sample),
            }


def _f1(both: int, serving: int, shadow: int) -> float | None:
    """F1 of the shadow's spans against the serving version's (1.0 when neither found any)."""
    return 2 * both / (serving + shadow) if serving + shadow else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class ShadowCollector(Collector):
    """tagger_shadow_* for every shadow running, read at scrape time."""

    def __init__(self, agreements: Callable[[], list[Agreement]]) -> None:
        self.agreements = agreements

    def collect(self) -> Iterator[Any]:
        keys = ["model", "serving", "shadow"]
        counters = {
            "sentences": CounterMetricFamily("tagger_shadow_sentences", "sentences tagged by both", labels=keys),
            "dropped": CounterMetricFamily("tagger_shadow_dropped", "copies not run: shadow behind", labels=keys),
            "tokens": CounterMetricFamily("tagger_shadow_tokens", "tokens tagged by both", labels=keys),
            "agreeing": CounterMetricFamily("tagger_shadow_tokens_agreeing", "tokens given the same tag", labels=keys),
        }
        spans = CounterMetricFamily("tagger_shadow_spans", "spans by label and side", labels=[*keys, "label", "side"])
        changes = CounterMetricFamily(
            "tagger_shadow_tag_changes", "tokens tagged differently", labels=[*keys, "serving_tag", "shadow_tag"]
        )
        confidence = CounterMetricFamily(
            "tagger_shadow_confidence", "sum of sentence confidences, by side", labels=[*keys, "side"]
        )
        latency = HistogramMetricFamily(
            "tagger_shadow_latency_seconds", "request time by side (serving: as answered)", labels=[*keys, "side"]
        )
        for one in self.agreements():
            at = [one.model, one.serving, one.shadow]
            with one._lock:
                for name, family in counters.items():
                    family.add_metric(at, getattr(one, name))
                for side, counts in one.spans.items():
                    for label, n in counts.items():
                        spans.add_metric([*at, label, side], n)
                for (a, b), n in one.changes.items():
                    changes.add_metric([*at, a, b], n)
                for side in SIDES:
                    confidence.add_metric([*at, side], one.confidence[side])
                    cumulative = np.cumsum(one.latency[side]).tolist()
                    buckets = [(f"{b:g}", float(n)) for b, n in zip(LATENCY_BOUNDS, cumulative, strict=False)]
                    latency.add_metric([*at, side], [*buckets, ("+Inf", float(cumulative[-1]))], one.latency_sum[side])
        yield from (*counters.values(), spans, changes, confidence, latency)
