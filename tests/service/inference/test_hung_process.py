"""A hung inference process (SIGSTOP: alive, answering nothing) is reported and replaced, whatever the traffic.

Against a real `tagger serve` on a copy of the shipped en-upos, with the defaults' order kept (a request gives up
before the stall timeout: 1 s against 6 s here, 10 s against 30 s by default), so that no request is ever owed
for as long as the stall timeout: the process must be told hung by its own silence (issue 30, item 1).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.inference.process_batcher import UNRESPONSIVE_S
from tests.conftest import ROOT
from tests.helpers import free_port, get, metrics, post, start_server, until, wait_ready

pytestmark = pytest.mark.server
STALL_S = 6.0
SMALL = {"sentences": [["The", "cat", "sat", "."]]}
JSON = {"content-type": "application/json"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    models = tmp_path / "models"
    shutil.copytree(ROOT / "exports" / "en-upos", models / "en-upos")
    port = free_port()
    env = {"TAGGER_REQUEST_TIMEOUT_S": "1", "TAGGER_INFERENCE_STALL_TIMEOUT_S": str(STALL_S)}
    process = start_server(models, port, TAGGER_DEFAULT_MODEL="en-upos", **env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, seconds=120)
        yield base, process
    finally:
        process.kill()
        process.wait(10)


def inference_pid(server: subprocess.Popen[str]) -> int:
    """The one inference process of a server serving one model (the other child is multiprocessing's tracker)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    found = [int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(found) == 1, found
    return found[0]


def restarts(base: str) -> float:
    match = re.search(r'^tagger_inference_restarts_total\{model="en-upos"\} (\S+)$', metrics(base), re.M)
    return float(match.group(1)) if match else 0.0


def stop_and_watch(base: str, pid: int, traffic: bool) -> tuple[float, float, list[int]]:
    """SIGSTOP `pid`; (seconds until /readyz said 503, seconds until a restart was counted, statuses answered)."""
    os.kill(pid, signal.SIGSTOP)
    stopped, not_ready, replaced, statuses = time.monotonic(), None, None, []
    try:
        while replaced is None and time.monotonic() - stopped < STALL_S + 15:
            if traffic:  # one request at a time, every 0.5 s: each gives up (1 s) long before the stall timeout
                statuses.append(post(f"{base}/v1/models/en-upos/tag", SMALL)[0])
            if not_ready is None and get(f"{base}/readyz")[0] == 503:
                not_ready = time.monotonic() - stopped
            if restarts(base) >= 1:
                replaced = time.monotonic() - stopped
            time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone once killed and reaped
            os.kill(pid, signal.SIGCONT)
    assert replaced is not None, f"a stopped inference process was never replaced (answers: {statuses})"
    assert not_ready is not None, "/readyz never reported the stopped process"
    return not_ready, replaced, statuses


def test_a_stopped_inference_process_is_reported_then_replaced_under_light_traffic(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    base, process = server
    hung = inference_pid(process)
    not_ready, replaced, statuses = stop_and_watch(base, hung, traffic=True)
    print(f"\nstopped under light traffic: /readyz 503 after {not_ready:.1f} s, replaced after {replaced:.1f} s")
    assert not_ready < UNRESPONSIVE_S + 1.5  # reported long before the stall timeout
    assert replaced < STALL_S + 3
    assert set(statuses) <= {504, 503}, statuses  # deadline_exceeded, then inference_restarting: never a 500
    wait_ready(base, process, seconds=60)
    assert inference_pid(process) != hung
    assert post(f"{base}/v1/models/en-upos/tag", SMALL)[0] == 200
    assert not Path(f"/proc/{hung}").exists() or "Z" in Path(f"/proc/{hung}/stat").read_text().rsplit(")", 1)[1][:3]


def test_a_stopped_inference_process_is_reported_then_replaced_without_any_traffic(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    base, process = server
    hung = inference_pid(process)
    not_ready, replaced, _ = stop_and_watch(base, hung, traffic=False)
    print(f"\nstopped while idle: /readyz 503 after {not_ready:.1f} s, replaced after {replaced:.1f} s")
    assert not_ready < UNRESPONSIVE_S + 1.5 and replaced < STALL_S + 3
    wait_ready(base, process, seconds=60)
    assert inference_pid(process) != hung and post(f"{base}/v1/models/en-upos/tag", SMALL)[0] == 200


def test_requests_racing_a_killed_inference_process_are_answered_or_refused_never_failed(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    """Sixteen clients keep sending while the inference process is SIGKILLed three times: every answer is a 200 or
    a documented 503/504, never a 500 or a dropped connection (a request sent in the moment the process died,
    before the server had handled its exit, was a 500 and closed its client's connection: found by
    benchmarks/chaos.py)."""
    import http.client
    import threading

    base, process = server
    port = int(base.rsplit(":", 1)[1])
    statuses: list[int | str] = []
    stop = threading.Event()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            try:
                connection.request("POST", "/v1/models/en-upos/tag", b'{"texts": ["The cat sat ."]}', JSON)
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
            except (OSError, http.client.HTTPException) as err:
                statuses.append(type(err).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        for killed in range(1, 4):
            time.sleep(1.0)
            os.kill(inference_pid(process), signal.SIGKILL)
            until(lambda: restarts(base) == killed, seconds=30)  # noqa: B023
            wait_ready(base, process, seconds=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    counts = {status: statuses.count(status) for status in set(statuses)}
    print(f"\nthree kills under 16 clients: {counts}")
    assert set(counts) <= {200, 503, 504}, counts
    assert restarts(base) == 3
