"""Failures of one folder stay that folder's (issue 30 items 3, 7 and 9), in the app itself where a fault must be
injected: an exception nobody foresaw while loading, a graph whose NaN slips past the load-time check, and the
models folder read on the event loop."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.models.repository as repository
from service.app import create_app
from service.settings import Settings
from tests.service.models.test_hostile_folders import nan_version
from tests.service.models.test_repository import AUTH, SENTENCE, TOKEN, client_for, index, new_version, ready, until

pytestmark = pytest.mark.trains


@pytest.fixture
def models(tiny_export: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copytree(tiny_export, folder / "tiny")
    shutil.copytree(tiny_export, tmp_path / "source")
    return folder


def failed(client: TestClient, model: str) -> str:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'tagger_model_changes_total{{change="failed",model="{model}"}} '):
            return line.split()[-1]
    return "absent"


def test_an_unforeseen_load_error_is_that_folders_failure(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = repository.build_served

    def build_or_fail(folder: Path, *args: Any, **kwargs: Any) -> Any:
        if folder.name == "boom":
            raise RecursionError("maximum recursion depth exceeded")  # not an ArtifactError, OSError or ValueError
        return build(folder, *args, **kwargs)

    monkeypatch.setattr(repository, "build_served", build_or_fail)
    source = models.parent / "source"
    with client_for(models, model_poll_s=0.1) as client:
        ready(client)
        new_version(source, models.parent / "boom", "boom", name="boom").rename(models / "boom")
        new_version(source, models.parent / "later", "later", name="later").rename(models / "later")
        until(lambda: index(client).get("later", {}).get("state") == "READY")  # the poll went past it
        entry = index(client)["boom"]
        assert entry["state"] == "UNAVAILABLE", entry
        assert entry["reason"] == "the new version failed to load: RecursionError: maximum recursion depth exceeded"
        assert failed(client, "boom") == "1.0"
        response = client.post("/v2/repository/models/boom/load", headers=AUTH)  # by request: refused, not a 500
        assert response.status_code == 400 and "RecursionError" in response.json()["error"], response.text
        assert failed(client, "boom") == "2.0" and index(client)["boom"]["state"] == "UNAVAILABLE"


def test_the_models_folder_is_read_off_the_event_loop(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scan, on_the_loop = repository.scan, []

    def scan_and_tell(folder: Path) -> Any:
        try:
            asyncio.get_running_loop()
            on_the_loop.append(True)
        except RuntimeError:  # no event loop in this thread: a worker thread
            on_the_loop.append(False)
        return scan(folder)

    monkeypatch.setattr(repository, "scan", scan_and_tell)
    with client_for(models) as client:
        ready(client)
        new_version(models.parent / "source", models / "other", "other", name="other")
        assert index(client)["other"]["state"] == "UNAVAILABLE"
        assert client.post("/v2/repository/models/other/load", headers=AUTH).status_code == 200
        assert client.post("/v2/repository/models/other/unload", headers=AUTH).status_code == 200
    assert on_the_loop and not any(on_the_loop), on_the_loop


def test_answers_never_carry_a_non_finite_score(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph that gives NaN only for some inputs passes the load-time check: its answers are a clear 500."""
    shutil.rmtree(models / "tiny")
    nan_version(models.parent / "source", models / "tiny", "tiny")
    monkeypatch.setattr("tagger.runtime.self_check", lambda runtime: None)  # as if the probe had come out finite
    settings = Settings(models=models, default_model="tiny", inference_process=False, control_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        ready(client)
        assert client.post("/v1/tag", json=SENTENCE).status_code == 200  # tags alone carry no score
        tokens = {"name": "tokens", "datatype": "BYTES", "shape": [1, 4], "data": SENTENCE["sentences"][0]}
        for path, body in [
            ("/v1/tag", {**SENTENCE, "scores": True}),
            ("/v1/tag", {**SENTENCE, "top_k": 2}),
            ("/v2/models/tiny/infer", {"inputs": [tokens], "parameters": {"scores": True}}),
            ("/v2/models/tiny/infer", {"inputs": [tokens], "parameters": {"top_k": 2}}),
        ]:
            response = client.post(path, json=body)
            assert response.status_code == 500, (path, body, response.text)
            json.loads(response.text, parse_constant=lambda name, text=response.text: pytest.fail(f"{name}: {text}"))
            assert "not numbers (NaN or infinite)" in response.text, response.text
