"""A real `tagger serve` process: start-up checks, readiness, and a drain on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import free_port, metrics, post, server_output, start_server, until, wait_ready

pytestmark = [pytest.mark.trains, pytest.mark.server]


@pytest.fixture
def server(models_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = start_server(models_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_inference_processes_end_with_the_server_even_when_it_is_killed(models_dir: Path) -> None:
    port = free_port()
    process = start_server(models_dir, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        children = [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
        assert children  # the model's inference process, and multiprocessing's resource tracker
    finally:
        process.kill()  # no drain, no exit handlers: the processes it spawned must notice on their own
        process.wait(10)

    def ended(pid: int) -> bool:
        try:  # gone, or a zombie waiting for whoever adopted it
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    until(lambda: all(ended(pid) for pid in children), seconds=20)


def inference_pid(server: subprocess.Popen[str]) -> int:
    """The one inference process of a server serving one model (the other child is multiprocessing's tracker)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    found = [int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(found) == 1, found
    return found[0]


def queued(base: str) -> float:
    match = re.search(r'^tagger_queue_depth\{model="tiny"\} (\S+)$', metrics(base), re.M)
    return float(match.group(1)) if match else 0.0


def test_sigterm_answers_every_request_in_flight_then_exits(server: tuple[str, subprocess.Popen[str]]) -> None:
    """SIGTERM lands while eight requests wait for the model (held with SIGSTOP): each gets its answer, a new
    request is refused (no connection, or a 503), never reset, and the server exits 0 once they are answered."""
    base, process = server
    model = inference_pid(process)
    sentences = [["The", "cat", "sat", f"w{i}"][i % 3 :] for i in range(8)]
    os.kill(model, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(8) as pool:
            in_flight = [pool.submit(post, f"{base}/v1/tag", {"sentences": [s]}) for s in sentences]
            until(lambda: queued(base) == 8)
            process.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # the server is draining, waiting for the model
            assert process.poll() is None and not any(f.done() for f in in_flight)
            try:
                status, _ = post(f"{base}/v1/tag", {"sentences": [["late"]]})
                assert status == 503, status  # accepted while draining: refused as such
            except urllib.error.URLError as err:
                assert isinstance(err.reason, ConnectionRefusedError), err  # the listener is closed: never accepted
            os.kill(model, signal.SIGCONT)
            answers = [f.result(timeout=30) for f in in_flight]
    finally:
        os.kill(model, signal.SIGCONT)
    assert [status for status, _ in answers] == [200] * 8, answers
    assert [json.loads(body)["results"][0]["tokens"] for _, body in answers] == sentences
    assert process.wait(30) == 0


def test_a_corrupt_model_stops_start_up_naming_the_file(models_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "models"
    shutil.copytree(models_dir, broken)
    with open(broken / "tiny" / "model.onnx", "r+b") as f:
        f.seek(50)
        f.write(b"garbage")
    process = start_server(broken, free_port())
    process.wait(timeout=60)
    output = server_output(process)
    assert process.returncode == 2
    assert "tiny/model.onnx: sha256" in output and "Traceback" not in output


def test_a_missing_models_folder_stops_start_up(tmp_path: Path) -> None:
    process = start_server(tmp_path / "nowhere", free_port())
    process.wait(timeout=60)
    output = server_output(process)
    assert process.returncode == 2 and "nowhere: models folder does not exist" in output
