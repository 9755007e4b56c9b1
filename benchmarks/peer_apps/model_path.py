"""The model path every peer app serves: our encoder, ONNX Runtime session and decoder, as the inference process
(`service.inference.process`) runs them.

Imported by the apps beside it (`ray_app.py`, `bento_service.py`, `lit_app.py`),
each in its own virtual environment with /work/main on PYTHONPATH: the core
(`tagger`) needs only numpy and onnxruntime. `benchmarks/peers.py` starts an
app with the export folder in PEER_MODEL and the framework's knobs as a JSON
object in PEER_KNOBS (batch size, wait, workers, ...).

What the service does and these do too: one ONNX Runtime session per process
with 1 intra-op thread and the warm-up grid before the first request, each
sentence encoded by `Vocab.encode_sentence`, a batch padded by `pad` and
decoded by `Runtime.tag`, the answer `{"model", "version", "results"}`. What
they leave to the framework: the queue and when a batch goes (no length
grouping, no token cap), and the request checks (just the JSON shape).
"""

from __future__ import annotations

import json
import os
from typing import Any

from tagger.artifact import MODEL_FILE
from tagger.encoding import pad
from tagger.runtime import Runtime, load_runtime

Sentences = list[list[str]]  # one request's sentences, each a list of tokens
Result = dict[str, list[str]]  # {"tokens": [...], "tags": [...]}


def knobs() -> dict[str, Any]:
    """The framework's knobs for this run (PEER_KNOBS), e.g. {"batch": 32, "wait_ms": 5, "workers": 1}."""
    return dict(json.loads(os.environ.get("PEER_KNOBS", "{}")))


def load() -> Runtime:
    """The export in PEER_MODEL, verified and warmed up, with the service's default of 1 intra-op thread."""
    runtime = load_runtime(os.environ["PEER_MODEL"], intra_threads=int(os.environ.get("PEER_INTRA_THREADS", "1")))
    runtime.warm_up()
    return runtime


def tag(runtime: Runtime, sentences: Sentences) -> list[Result]:
    """One batch: every sentence's tokens and tags, in order (`sentences` from any number of requests)."""
    batch = pad([runtime.vocab.encode_sentence(s) for s in sentences])  # words (B, T), chars (B, T, C)
    return [{"tokens": s, "tags": d.tags} for s, d in zip(sentences, runtime.tag(batch), strict=True)]


def tag_requests(runtime: Runtime, requests: list[Sentences]) -> list[list[Result]]:
    """Several requests' sentences as one batch, the results split back per request.

    Example: requests [[a], [b, c]] -> one batch [a, b, c] -> [[ra], [rb, rc]].
    """
    results = tag(runtime, [s for request in requests for s in request])
    out, start = [], 0
    for request in requests:
        out.append(results[start : start + len(request)])
        start += len(request)
    return out


def answer(runtime: Runtime, results: list[Result]) -> dict[str, Any]:
    """The response body of our API: model name, content version (sha256 prefix) and results."""
    return {"model": runtime.name, "version": runtime.metadata.files[MODEL_FILE][:12], "results": results}
