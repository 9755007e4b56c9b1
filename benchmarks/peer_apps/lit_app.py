"""The tagger behind LitServe: a LitAPI with `batch`/`unbatch` and LitServe's own batching.

    PEER_MODEL=exports/en-upos PEER_KNOBS='{"batch": 32, "wait_ms": 5, "workers": 1}' python lit_app.py PORT

Serves POST /tag and GET /health on 127.0.0.1:PORT until SIGINT (LitServe
shuts down on KeyboardInterrupt; SIGTERM leaves its worker processes behind).
No `from __future__ import annotations`: LitServe reads the request type from
`decode_request`'s annotation (a pydantic model: FastAPI validates the body).
Knobs: `batch` (max_batch_size), `wait_ms` (batch_timeout), `workers`
(inference workers on the CPU, workers_per_device), `api_servers` (HTTP
server processes, num_api_servers; LitServe's default is one per worker) and
`fast_queue` (ZeroMQ between the HTTP servers and the workers).
"""

import sys
from typing import Any

import litserve as ls
import model_path
from pydantic import BaseModel

KNOBS = {"batch": 32, "wait_ms": 5.0, "workers": 1, "api_servers": None, "fast_queue": False, **model_path.knobs()}


class TagRequest(BaseModel):
    sentences: list[list[str]]


class TaggerAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.runtime = model_path.load()

    def decode_request(self, request: TagRequest) -> model_path.Sentences:
        return request.sentences

    def batch(self, inputs: list[model_path.Sentences]) -> list[model_path.Sentences]:
        return inputs  # the requests' sentences become one padded batch in predict

    def predict(self, requests: list[model_path.Sentences]) -> list[list[model_path.Result]]:
        return model_path.tag_requests(self.runtime, requests)

    def unbatch(self, output: list[list[model_path.Result]]) -> list[list[model_path.Result]]:
        return output

    def encode_response(self, output: list[model_path.Result]) -> dict[str, Any]:
        return model_path.answer(self.runtime, output)


def main(port: int) -> None:
    api = TaggerAPI(max_batch_size=int(KNOBS["batch"]), batch_timeout=float(KNOBS["wait_ms"]) / 1000, api_path="/tag")
    server = ls.LitServer(
        api, accelerator="cpu", workers_per_device=int(KNOBS["workers"]), fast_queue=bool(KNOBS["fast_queue"])
    )
    servers = KNOBS["api_servers"]
    server.run(
        host="127.0.0.1",
        port=port,
        num_api_servers=None if servers is None else int(servers),
        log_level="warning",
        generate_client_file=False,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
