"""The tagger behind Ray Serve: a FastAPI ingress deployment whose `@serve.batch` method runs the model path.

    PEER_MODEL=exports/en-upos PEER_KNOBS='{"batch": 32, "wait_ms": 5, "replicas": 1}' python ray_app.py PORT

Starts a local Ray instance (its processes are this one's children), serves
POST /tag and GET /readyz on 127.0.0.1:PORT through Serve's HTTP proxy, and
shuts Serve and Ray down on SIGTERM or SIGINT. Knobs: `batch`
(max_batch_size), `wait_ms` (batch_wait_timeout_s), `replicas`
(num_replicas, one CPU each) and `max_ongoing` (max_ongoing_requests per
replica; its default 5 would cap every batch at 5, so it is set above the
load's 64 connections). With RAY_SERVE_THROUGHPUT_OPTIMIZED=1 in the
environment (`benchmarks/peers.py` sets it from its `throughput_optimized`
knob) Serve runs its documented high-throughput options; HAProxy ingress
(RAY_SERVE_ENABLE_HA_PROXY) is left out: it binds the replicas' HTTP ports on
every interface.
"""

import signal
import sys
import threading
from typing import Any

import model_path
import ray
from fastapi import FastAPI
from pydantic import BaseModel
from ray import serve

KNOBS = {"batch": 32, "wait_ms": 5.0, "replicas": 1, "max_ongoing": 128, **model_path.knobs()}
app = FastAPI()


def loopback_only() -> None:
    """Bind this replica's inter-deployment gRPC server to 127.0.0.1: Serve 2.60 hardcodes `[::]:0` for it
    (ray/serve/_private/replica.py), the one Ray server that RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 leaves on every
    interface. It starts after the constructor, so the patch is in time; nothing else changes. Defined above the
    deployment: Serve pickles the class (from __main__, by value) when it is decorated."""
    from ray.serve._private import replica

    add = replica.add_port_to_grpc_server
    replica.add_port_to_grpc_server = lambda server, address: add(server, address.replace("[::]", "127.0.0.1"))


class TagRequest(BaseModel):
    sentences: list[list[str]]


@serve.deployment(ray_actor_options={"num_cpus": 1})
@serve.ingress(app)
class Tagger:
    def __init__(self) -> None:
        loopback_only()
        self.runtime = model_path.load()

    @serve.batch(max_batch_size=int(KNOBS["batch"]), batch_wait_timeout_s=float(KNOBS["wait_ms"]) / 1000)
    async def tag_batch(self, requests: list[model_path.Sentences]) -> list[list[model_path.Result]]:
        return model_path.tag_requests(self.runtime, requests)

    @app.post("/tag")
    async def tag(self, body: TagRequest) -> dict[str, Any]:
        return model_path.answer(self.runtime, await self.tag_batch(body.sentences))

    @app.get("/readyz")
    async def readyz(self) -> dict[str, str]:
        return {"status": "ready"}


def main(port: int) -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which installs handlers of its own
        signal.signal(signum, lambda *_: stopped.set())
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        options = {"num_replicas": int(KNOBS["replicas"]), "max_ongoing_requests": int(KNOBS["max_ongoing"])}
        deployment = Tagger.options(**options)  # type: ignore[attr-defined]  # a serve.Deployment, not the class
        serve.run(deployment.bind(), name="tagger", route_prefix="/")
        while not stopped.wait(0.5):
            pass
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]))
