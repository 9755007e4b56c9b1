"""Swapping a model under load loses nothing: 32 clients tag without pause while the model is replaced by
a new export folder five times and once by a broken one. Every request answers 200, the broken version is
refused with its reason, and after each swap the answers carry the new version."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import free_port, server_output, start_server, wait_ready
from tests.service.models.test_repository import AUTH, TOKEN, broken, new_version

pytestmark = [pytest.mark.server, pytest.mark.trains]
CLIENTS, SWAPS = 32, 5
BODY = json.dumps({"sentences": [["The", "new", "version", "tags", "this", "."]]})


class Client(threading.Thread):
    """Tags on one keep-alive connection until told to stop; records each answer's status and version."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.answers: list[tuple[int, str]] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            connection.request("POST", "/v1/models/tiny/tag", BODY, {"content-type": "application/json"})
            response = connection.getresponse()
            body = json.loads(response.read())
            self.answers.append((response.status, body.get("version", json.dumps(body))))
        connection.close()


def control(port: int, path: str) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", path, headers=AUTH)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_swaps_under_load_lose_no_request(models_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    source = tmp_path / "source"
    shutil.copytree(models / "tiny", source)
    port = free_port()
    server = start_server(models, port, TAGGER_CONTROL_TOKEN=TOKEN, TAGGER_ACCESS_LOG="false")
    stop = threading.Event()
    clients = [Client(port, stop) for _ in range(CLIENTS)]
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        for client in clients:
            client.start()
        time.sleep(1.0)
        versions = [clients[0].answers[-1][1]]
        for swap in range(SWAPS + 1):
            shutil.rmtree(models / "tiny")  # a new export folder in its place: the service keeps its copy in memory
            fresh = new_version(source, models / "tiny", str(swap))
            if swap == 2:
                broken(fresh)
            status, entry = control(port, "/v2/repository/models/tiny/load")
            if swap == 2:  # refused, with the reason, while the old version goes on serving
                assert status == 400 and "does not match" in entry["error"], entry
                continue
            assert status == 200 and entry["state"] == "READY" and entry["version"] != versions[-1], entry
            versions.append(entry["version"])
            seen = [len(c.answers) for c in clients]
            deadline = time.monotonic() + 30
            # two more answers each: the first may be of a request admitted before the swap
            while any(len(c.answers) < n + 2 for c, n in zip(clients, seen, strict=True)):
                assert time.monotonic() < deadline, "clients stopped getting answers"
                time.sleep(0.05)
            assert [c.answers[-1] for c in clients] == [(200, entry["version"])] * CLIENTS  # admitted after: new
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join(30)
        server.terminate()
        server.wait(30)
    answers = [a for c in clients for a in c.answers]
    assert answers and all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:5]
    assert {version for _, version in answers} == set(versions)  # every version served, and nothing else
    for client in clients:  # each client's answers move forward through the versions, never back
        order = [versions.index(version) for _, version in client.answers]
        assert order == sorted(order)
    log = server_output(server)
    assert log.count("drained and stopped") == SWAPS and "failed to load" in log
    print(f"\n{len(answers)} answers from {CLIENTS} clients across {SWAPS} swaps and one refused version")
