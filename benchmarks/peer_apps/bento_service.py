"""The tagger behind BentoML (>= 1.2 service API): a batchable API, BentoML's adaptive batching.

    cd benchmarks/peers && PEER_MODEL=../../exports/en-upos PEER_KNOBS='{"batch": 32, "max_latency_ms": 1000}' \
        bentoml serve bento_service:Tagger --host 127.0.0.1 --port PORT

Serves POST /tag (and BentoML's /readyz). Knobs: `batch` (max_batch_size),
`max_latency_ms` (the latency the dispatcher plans batches for; a request
that would exceed it is answered 503) and `workers` (processes, each with
its own HTTP server, dispatcher and model).

A batchable API takes one batchable argument and answers the caller its slice
of the batch's output: the request is ours, `{"sentences": [[...]]}`, but the
answer is the bare `results` list. BentoML's documented way to wrap it
(a second service calling this one through `bentoml.depends`) adds a process
hop per request, so the results are not wrapped in {"model", "version"}.
"""

from __future__ import annotations

import bentoml
import model_path

KNOBS = {"batch": 32, "max_latency_ms": 1000, "workers": 1, **model_path.knobs()}


@bentoml.service(workers=int(KNOBS["workers"]), traffic={"timeout": 30})
class Tagger:
    def __init__(self) -> None:
        self.runtime = model_path.load()

    @bentoml.api(
        route="/tag", batchable=True, max_batch_size=int(KNOBS["batch"]), max_latency_ms=int(KNOBS["max_latency_ms"])
    )
    def tag(self, sentences: list[list[str]]) -> list[dict[str, list[str]]]:
        return model_path.tag(self.runtime, sentences)
