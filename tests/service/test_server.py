"""A real `tagger serve` process: start-up checks, readiness, and a drain on SIGTERM."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, post, server_output, start_server, until, wait_ready

pytestmark = [pytest.mark.trains, pytest.mark.server]


@pytest.fixture
def server(models_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    # a slow-ish batcher (10 ms wait) so SIGTERM lands while work is queued
    process = start_server(models_dir, port, TAGGER_MAX_WAIT_MS="10")
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


def test_sigterm_answers_every_accepted_request_then_exits(server: tuple[str, subprocess.Popen[str]]) -> None:
    base, process = server
    statuses: list[int] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        for _ in range(20):
            try:
                status, _ = post(f"{base}/v1/tag", {"sentences": [["The", "cat", "sat"] * (1 + i % 5)]})
            except OSError:  # refused after the listener closed: never accepted
                return
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(60)
    assert process.wait(30) == 0
    assert statuses and all(status in (200, 503) for status in statuses), statuses
    assert statuses.count(200) >= 8  # real work was answered, not just refused


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
