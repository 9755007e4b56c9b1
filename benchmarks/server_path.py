"""The server's own CPU per request: the whole ASGI stack on one-sentence requests, with a batcher that answers
at once, so no inference process and no HTTP parser takes part.

    python benchmarks/server_path.py [--requests 4000] [--repeat 3]

Measures the middleware, the JSON parsing and validation, the route code,
the encoding and the answer, in this process (CPU time, all its threads),
for the tag routes' fast path (`service.edge.fastpath`, as shipped) and for the
same requests through FastAPI's routes behind it, alternately, `--repeat`
times each; prints the median and every run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from load import DEV

from service.app import create_app
from service.edge.fastpath import TagFastPath
from service.settings import Settings
from tagger.decoding import Tagged
from tagger.encoding import Encoded
from tagger.readers import read_corpus


class Instant:
    """A `ModelBatcher` that answers every sentence at once with one tag: the server's own work only."""

    name, depth, available, pid = "en-upos", 0, True, None

    def start(self) -> None:
        pass

    async def ready(self) -> None:
        pass

    async def loaded(self) -> None:
        pass

    async def drain(self) -> None:
        pass

    def submit(
        self, sentences: Sequence[Encoded], deadline: float, details: bool = True
    ) -> list[asyncio.Future[Tagged]]:
        loop = asyncio.get_running_loop()
        futures = []
        for sentence in sentences:
            future: asyncio.Future[Tagged] = loop.create_future()
            future.set_result(Tagged(["NOUN"] * len(sentence), (), None, None))
            futures.append(future)
        return futures


async def one(app: Any, body: bytes) -> None:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/tag", "raw_path": b"/v1/tag", "query_string": b"", "root_path": "", "state": {},
        "headers": [(b"host", b"x"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(60)  # no disconnect: the request is answered long before
        return {"type": "http.disconnect"}

    statuses = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    assert statuses == [200], statuses


async def cpu_per_request(app: Any, bodies: list[bytes], requests: int) -> float:
    for body in bodies[:200]:  # warm up
        await one(app, body)
    started = time.process_time()
    for i in range(requests):
        await one(app, bodies[i % len(bodies)])
    return (time.process_time() - started) / requests * 1e6


def build() -> Any:
    app = create_app(Settings(inference_process=False, warmup=False))
    state = app.state.tagger
    state.models["en-upos"] = dataclasses.replace(state.models["en-upos"], batcher=Instant())
    return app


async def measure(requests: int, repeat: int, bodies: list[bytes]) -> dict[str, list[float]]:
    fast, routed = build(), build()
    runs: dict[str, list[float]] = {"fast path": [], "FastAPI routes": []}
    original = TagFastPath.__call__

    async def straight_on(self: TagFastPath, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    async with fast.router.lifespan_context(fast), routed.router.lifespan_context(routed):
        fast.state.tagger.ready = routed.state.tagger.ready = True
        for _ in range(repeat):
            runs["fast path"].append(await cpu_per_request(fast, bodies, requests))
            TagFastPath.__call__ = straight_on  # type: ignore[method-assign]
            try:
                runs["FastAPI routes"].append(await cpu_per_request(routed, bodies, requests))
            finally:
                TagFastPath.__call__ = original  # type: ignore[method-assign]
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sentences = [s.tokens for s in read_corpus(DEV["en-upos"])]
    bodies = [json.dumps({"sentences": [list(s)]}).encode() for s in sentences]
    runs = asyncio.run(measure(args.requests, args.repeat, bodies))
    for name, values in runs.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name}: {statistics.median(values):.0f} us of server CPU a request (runs: {shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
