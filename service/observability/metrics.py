"""Prometheus metrics of one service process, in a registry of its own.

One process per container, by design (see the README): the batcher only helps
when every request of a replica shares one queue, so replicas scale by
containers, not by worker processes, and each process's /metrics is the whole
truth about it; no multiprocess mode is needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
RATIO_BUCKETS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Metrics:
    prometheus: CollectorRegistry  # every collector of this process: what /metrics exposes
    requests: Counter
    request_latency: Histogram
    queue_wait: Histogram
    inference_time: Histogram
    sentence_latency: Histogram
    batch_sentences: Histogram
    batch_tokens: Histogram
    padding_ratio: Histogram
    queue_depth: Gauge
    tokens: Counter
    sentences: Counter
    rejections: Counter
    model_info: Info
    inference_restarts: Counter
    model_changes: Counter
    rate_limited: Counter


def create_metrics() -> Metrics:
    """All metrics, registered in a fresh registry with process and platform collectors."""
    r = CollectorRegistry()
    ProcessCollector(registry=r)
    PlatformCollector(registry=r)
    by_model = ["model"]
    return Metrics(
        prometheus=r,
        requests=Counter(
            "tagger_requests", "HTTP requests by route, model and status", ["route", "model", "status"], registry=r
        ),
        request_latency=Histogram(
            "tagger_request_seconds",
            "HTTP request latency by route, model and status",
            ["route", "model", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        ),
        queue_wait=Histogram(
            "tagger_queue_wait_seconds",
            "time a sentence waited for its batch",
            by_model,
            buckets=LATENCY_BUCKETS,
            registry=r,
        ),
        inference_time=Histogram(
            "tagger_inference_seconds",
            "time per batch in the model's inference process: ONNX Runtime and decoding",
            by_model,
            buckets=LATENCY_BUCKETS,
            registry=r,
        ),
        sentence_latency=Histogram(
            "tagger_sentence_seconds",
            "per sentence, enqueue to result",
            by_model,
            buckets=LATENCY_BUCKETS,
            registry=r,
        ),
        batch_sentences=Histogram(
            "tagger_batch_sentences", "sentences per batch", by_model, buckets=BATCH_BUCKETS, registry=r
        ),
        batch_tokens=Histogram(
            "tagger_batch_tokens", "padded tokens per batch", by_model, buckets=TOKEN_BUCKETS, registry=r
        ),
        padding_ratio=Histogram(
            "tagger_batch_padding_ratio",
            "share of a batch's padded token slots that are padding",
            by_model,
            buckets=RATIO_BUCKETS,
            registry=r,
        ),
        queue_depth=Gauge("tagger_queue_depth", "sentences waiting for a batch", by_model, registry=r),
        tokens=Counter("tagger_tokens", "tokens tagged", by_model, registry=r),
        sentences=Counter("tagger_sentences", "sentences tagged", by_model, registry=r),
        rejections=Counter("tagger_rejections", "refused requests by reason", ["reason"], registry=r),
        model_info=Info("tagger_model", "served models", ["model"], registry=r),
        inference_restarts=Counter(
            "tagger_inference_restarts",
            "inference processes replaced after exiting unexpectedly",
            by_model,
            registry=r,
        ),
        model_changes=Counter(
            "tagger_model_changes",
            "changes to the served models: a version loaded or swapped in, unloaded, or refused (failed)",
            ["model", "change"],
            registry=r,
        ),
        rate_limited=Counter(
            "tagger_rate_limited",
            "requests refused by the rate limit, by client: an API key's id, or 'address' without keys",
            ["client"],
            registry=r,
        ),
    )


class InferenceProcesses(Collector):
    """CPU time and resident memory of each inference process, read from /proc at scrape time.

    The process collector covers the server process only; the models run in
    processes of their own (see service/inference/process.py). Labelled by model and
    version: during a swap the old version's process, still draining, is listed beside
    the new one. Nothing on systems without /proc.
    """

    def __init__(self, processes: Callable[[], list[tuple[str, str, int]]]) -> None:
        self._processes = processes  # (model, version, pid) of each inference process
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "version"]
        cpu = CounterMetricFamily(
            "tagger_inference_process_cpu_seconds", "CPU time of a model's inference process", labels=labels
        )
        memory = GaugeMetricFamily(
            "tagger_inference_process_resident_memory_bytes",
            "resident memory of a model's inference process",
            labels=labels,
        )
        for model, version, pid in self._processes():
            try:
                # fields after the command name: state is 0, utime 11, stime 12, rss (pages) 21
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            cpu.add_metric([model, version], (int(fields[11]) + int(fields[12])) / self._ticks)
            memory.add_metric([model, version], int(fields[21]) * self._page)
        yield cpu
        yield memory
