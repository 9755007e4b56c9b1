"""Batched results equal one-at-a-time results, whatever the mix of lengths and requests."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.inference.in_process import InProcessBatcher
from service.inference.scheduling import BatchLimits
from service.observability.metrics import create_metrics
from service.settings import Settings
from tagger.decoding import Decoded
from tagger.runtime import Runtime, load_runtime

pytestmark = pytest.mark.trains
WORDS = ["The", "cat", "sat", "on", "the", "mat", ".", "Paris", "1984", "don't", "xylophone", "!", "U.S.", "re-do"]


@pytest.fixture(scope="module")
def runtime(tiny_export: Path) -> Runtime:
    return load_runtime(tiny_export)


def alone(runtime: Runtime, tokens: list[str]) -> Decoded:
    (decoded,) = runtime.tag(runtime.vocab.encode([tokens]))
    return decoded


requests_strategy = st.lists(  # requests, each a list of sentences of random lengths
    st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=40), min_size=1, max_size=6),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    requests=requests_strategy, max_tokens=st.sampled_from([40, 128, 4096]), max_sentences=st.sampled_from([1, 3, 64])
)
def test_batcher_results_equal_tagging_each_sentence_alone(
    runtime: Runtime, requests: list[list[list[str]]], max_tokens: int, max_sentences: int
) -> None:
    async def scenario() -> list[list[Decoded]]:
        limits = BatchLimits(batch_sentences=max_sentences, batch_tokens=max_tokens)
        batcher = InProcessBatcher("tiny", runtime.tag, limits, create_metrics())
        batcher.start()
        deadline = time.perf_counter() + 30

        async def one(request: list[list[str]]) -> list[Decoded]:
            await asyncio.sleep(random.random() * 0.005)  # arrivals interleave
            encoded = [runtime.vocab.encode_sentence(s) for s in request]
            return list(await asyncio.gather(*batcher.submit(encoded, deadline)))

        try:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        finally:
            await batcher.drain()

    for request, results in zip(requests, asyncio.run(scenario()), strict=True):
        for tokens, decoded in zip(request, results, strict=True):
            reference = alone(runtime, tokens)
            assert decoded.tags == reference.tags
            np.testing.assert_allclose(decoded.marginals, reference.marginals, atol=1e-5)


@pytest.mark.parametrize("inference_process", [True, False], ids=["own-process", "server-thread"])
def test_concurrent_http_requests_get_the_same_tags_as_alone(
    models_dir: Path, runtime: Runtime, inference_process: bool
) -> None:
    rng = random.Random(11)
    sentences = [[rng.choice(WORDS) for _ in range(rng.randint(1, 30))] for _ in range(96)]
    expected = [alone(runtime, s).tags for s in sentences]
    got: dict[int, list[str]] = {}
    settings = Settings(models=models_dir, default_model="tiny", warmup=False, inference_process=inference_process)
    with TestClient(create_app(settings)) as client:

        def worker(indices: list[int]) -> None:
            for i in indices:
                response = client.post("/v1/tag", json={"sentences": [sentences[i]]})
                got[i] = response.json()["results"][0]["tags"]

        threads = [threading.Thread(target=worker, args=(list(range(k, 96, 8)),)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert [got[i] for i in range(96)] == expected
