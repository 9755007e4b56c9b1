"""The live model repository: models loaded, unloaded and swapped while the service runs, through
`/v2/repository` (behind TAGGER_CONTROL_TOKEN) and by polling the models folder (TAGGER_MODEL_POLL_S)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tagger.artifact import METADATA_FILE, MODEL_FILE, PROFILE_FILE, sha256_file

pytestmark = pytest.mark.trains
TOKEN = "control-token-for-tests-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SENTENCE = {"sentences": [["The", "cat", "sat", "."]]}


def new_version(source: Path, target: Path, mark: str, name: str | None = None) -> Path:
    """A copy of an export folder whose graph differs in its doc string only: a new version, the same tags."""
    import onnx

    shutil.copytree(source, target)
    graph = onnx.load(str(target / MODEL_FILE))
    graph.doc_string = f"version {mark}"
    onnx.save(graph, str(target / MODEL_FILE))
    if name is not None:
        metadata = json.loads((target / METADATA_FILE).read_text())
        (target / METADATA_FILE).write_text(json.dumps({**metadata, "name": name}))
    return recorded(target)


def recorded(folder: Path) -> Path:
    """The folder's files recorded as an export records them: its reference profile (if any) made for the graph
    now in it, and the sha256 of every file its metadata lists."""
    metadata = json.loads((folder / METADATA_FILE).read_text())
    if PROFILE_FILE in metadata["files"]:
        profile = json.loads((folder / PROFILE_FILE).read_text())
        profile["source"]["model_sha256"] = sha256_file(folder / MODEL_FILE)
        (folder / PROFILE_FILE).write_text(json.dumps(profile))
    metadata["files"] = {name: sha256_file(folder / name) for name in metadata["files"]}
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    return folder


def broken(folder: Path) -> Path:
    """The folder's graph no longer matches the sha256 its metadata records."""
    with open(folder / MODEL_FILE, "ab") as graph:
        graph.write(b"\0")
    return folder


@pytest.fixture
def models(tiny_export: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copytree(tiny_export, folder / "tiny")
    return folder


def client_for(models: Path, **settings: Any) -> TestClient:
    return TestClient(
        create_app(Settings(models=models, default_model="tiny", control_token=TOKEN, max_batch_tokens=512, **settings))
    )


def ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)


def index(client: TestClient) -> dict[str, dict[str, str]]:
    response = client.get("/v2/repository/index", headers=AUTH)
    assert response.status_code == 200, response.text
    return {entry["name"]: entry for entry in response.json()}


def version_of(client: TestClient, model: str = "tiny") -> str:
    response = client.post(f"/v1/models/{model}/tag", json=SENTENCE)
    assert response.status_code == 200, response.text
    version: str = response.json()["version"]
    return version


@pytest.fixture
def client(models: Path) -> Iterator[TestClient]:
    with client_for(models) as client:
        ready(client)
        yield client


def test_model_control_is_off_without_a_control_token(models: Path) -> None:
    with TestClient(create_app(Settings(models=models, default_model="tiny", warmup=False))) as client:
        assert client.get("/v2/repository/index").status_code == 404
        assert client.post("/v2/repository/models/tiny/unload").status_code == 404


def test_model_control_needs_the_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}):
        response = client.post("/v2/repository/models/tiny/unload", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": "model control needs Authorization: Bearer <TAGGER_CONTROL_TOKEN>"}
    assert version_of(client)  # nothing was unloaded


def test_the_index_lists_served_models_and_folders_not_loaded(client: TestClient, models: Path) -> None:
    (models / "junk").mkdir()
    (models / "junk" / METADATA_FILE).write_text("{not json")
    entries = index(client)
    assert entries["tiny"] == {"name": "tiny", "version": version_of(client), "state": "READY", "reason": ""}
    assert entries["junk"]["state"] == "UNAVAILABLE" and "cannot read its metadata.json" in entries["junk"]["reason"]
    assert (
        client.post("/v2/repository/index", headers=AUTH).json()
        == client.get("/v2/repository/index", headers=AUTH).json()
    )  # tritonclient asks with POST


def test_load_a_new_model_then_unload_it(client: TestClient, models: Path) -> None:
    new_version(models / "tiny", models / "other", "1", name="other")
    response = client.post("/v2/repository/models/other/load", headers=AUTH)
    assert response.status_code == 200 and response.json()["state"] == "READY"
    assert len(version_of(client, "other")) == 12
    assert 'tagger_model_changes_total{change="loaded",model="other"} 1.0' in client.get("/metrics").text
    response = client.post("/v2/repository/models/other/unload", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "name": "other",
        "version": response.json()["version"],
        "state": "UNAVAILABLE",
        "reason": "unloaded",
    }
    assert client.post("/v1/models/other/tag", json=SENTENCE).status_code == 404
    assert 'tagger_model_info{model="other"' not in client.get("/metrics").text


def test_a_changed_folder_is_swapped_in_as_a_new_version(client: TestClient, models: Path) -> None:
    old = version_of(client)
    shutil.rmtree(models / "tiny")
    new_version(models.parent / "source-tiny", models / "tiny", "2")
    response = client.post("/v2/repository/models/tiny/load", headers=AUTH)
    assert response.status_code == 200, response.text
    new = response.json()["version"]
    assert new != old and version_of(client) == new
    metrics = client.get("/metrics").text
    assert f'tagger_model_info{{model="tiny",sha256="{sha256_file(models / "tiny" / MODEL_FILE)}"' in metrics
    assert 'tagger_model_changes_total{change="loaded",model="tiny"} 2.0' in metrics  # at start-up, then now


@pytest.fixture(autouse=True)
def _keep_a_source(models: Path) -> None:
    """A pristine copy beside the models folder, to make new versions from after the served folder is gone."""
    shutil.copytree(models / "tiny", models.parent / "source-tiny")


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(client: TestClient, models: Path) -> None:
    old = version_of(client)
    shutil.rmtree(models / "tiny")
    broken(new_version(models.parent / "source-tiny", models / "tiny", "3"))
    response = client.post("/v2/repository/models/tiny/load", headers=AUTH)
    assert response.status_code == 400
    assert "the new version failed to load" in response.json()["error"] and "does not match" in response.json()["error"]
    assert version_of(client) == old
    entry = index(client)["tiny"]
    assert entry["state"] == "READY" and entry["version"] == old and "does not match" in entry["reason"]
    assert 'tagger_model_changes_total{change="failed",model="tiny"} 1.0' in client.get("/metrics").text


def test_a_graph_that_does_not_load_is_refused_by_its_inference_process(client: TestClient, models: Path) -> None:
    new_version(models.parent / "source-tiny", models / "bad", "4", name="bad")
    (models / "bad" / MODEL_FILE).write_bytes(b"not an onnx graph")
    recorded(models / "bad")  # checksums, does not load
    response = client.post("/v2/repository/models/bad/load", headers=AUTH)
    assert response.status_code == 400 and "failed to load" in response.json()["error"]
    assert index(client)["bad"]["state"] == "UNAVAILABLE"
    assert client.post("/v1/models/bad/tag", json=SENTENCE).status_code == 404


def test_unknown_ambiguous_and_default_models_are_refused(client: TestClient, models: Path) -> None:
    response = client.post("/v2/repository/models/nothing/load", headers=AUTH)
    assert response.status_code == 404 and "no export folder" in response.json()["error"]
    new_version(models.parent / "source-tiny", models / "tiny-again", "5")  # declares the name "tiny" too
    response = client.post("/v2/repository/models/tiny/load", headers=AUTH)
    assert response.status_code == 409 and "2 folders hold a model named 'tiny'" in response.json()["error"]
    response = client.post("/v2/repository/models/tiny/unload", headers=AUTH)
    assert response.status_code == 409 and "default model" in response.json()["error"]


def test_polling_loads_new_folders_swaps_changed_ones_and_unloads_removed_ones(models: Path) -> None:
    with client_for(models, model_poll_s=0.1) as client:
        ready(client)
        new_version(models.parent / "source-tiny", models / "polled", "6", name="polled")
        until(lambda: index(client).get("polled", {}).get("state") == "READY")
        first = version_of(client, "polled")
        shutil.rmtree(models / "polled")
        new_version(models.parent / "source-tiny", models / "polled", "7", name="polled")
        until(lambda: index(client)["polled"]["version"] != first)
        assert version_of(client, "polled") == index(client)["polled"]["version"]
        shutil.rmtree(models / "polled")
        until(lambda: index(client)["polled"]["state"] == "UNAVAILABLE")
        assert index(client)["polled"]["reason"] == "its folder is gone"
        assert client.post("/v1/models/polled/tag", json=SENTENCE).status_code == 404


def until(condition: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_server_metadata_lists_the_model_repository_extension(client: TestClient, models: Path) -> None:
    assert "model_repository" in client.get("/v2").json()["extensions"]
    with TestClient(create_app(Settings(models=models, default_model="tiny", warmup=False))) as plain:
        assert "model_repository" not in plain.get("/v2").json()["extensions"]


@pytest.mark.server
def test_tritonclient_drives_model_control(models: Path) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    from tests.helpers import free_port, start_server, wait_ready

    port = free_port()
    server = start_server(models, port, TAGGER_CONTROL_TOKEN=TOKEN)
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        new_version(models.parent / "source-tiny", models / "other", "8", name="other")  # after start-up
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        states = {m["name"]: m["state"] for m in client.get_model_repository_index(headers=AUTH)}
        assert states == {"tiny": "READY", "other": "UNAVAILABLE"}
        client.load_model("other", headers=AUTH)
        assert client.is_model_ready("other")
        client.unload_model("other", headers=AUTH)
        assert not client.is_model_ready("other")
        with pytest.raises(InferenceServerException, match="TAGGER_CONTROL_TOKEN"):
            client.load_model("other")  # no token
    finally:
        server.terminate()
        server.wait(30)


def test_a_folder_mid_copy_neither_unloads_its_model_nor_stops_the_poll(models: Path) -> None:
    with client_for(models, model_poll_s=0.1) as client:
        ready(client)
        new_version(models.parent / "source-tiny", models / "other", "9", name="other")
        until(lambda: index(client).get("other", {}).get("state") == "READY")
        (models / "other" / METADATA_FILE).write_text('{"name": "other", "fi')  # half-written by a copy
        (models / "odd").mkdir()
        (models / "odd" / METADATA_FILE).write_text('{"name": "odd", "files": null}')
        time.sleep(1.0)  # ten polls
        entries = index(client)
        assert entries["other"]["state"] == "READY" and len(version_of(client, "other")) == 12
        assert entries["odd"]["state"] == "UNAVAILABLE" and "cannot read" in entries["odd"]["reason"]
        new_version(models.parent / "source-tiny", models / "later", "10", name="later")  # the poll goes on
        until(lambda: index(client).get("later", {}).get("state") == "READY")


def test_an_unload_during_warm_up_does_not_hold_readiness(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import service.app

    new_version(models / "tiny", models / "other", "11", name="other")
    unloaded, warm_up = threading.Event(), service.app.warm_up

    async def warm_up_after_the_unload(served: Any) -> None:  # the warm-up is under way when the unload comes
        await asyncio.to_thread(unloaded.wait, 30)
        await warm_up(served)

    monkeypatch.setattr(service.app, "warm_up", warm_up_after_the_unload)
    with client_for(models) as client:
        assert client.get("/readyz").json()["status"] == "warming up"
        response = client.post("/v2/repository/models/other/unload", headers=AUTH)
        unloaded.set()
        assert response.status_code == 200
        ready(client)


@pytest.mark.parametrize(
    "settings",
    [{"control_token": "short"}, {"control_token": "é" * 20}, {"control_token": "a b" * 8}, {"model_poll_s": 0.01}],
)
def test_unsafe_control_settings_are_refused_at_start_up(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"control_token|model_poll_s"):
        Settings(**settings)


def test_a_graph_with_other_inputs_leaves_the_old_version_serving(client: TestClient, models: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    old = version_of(client)
    shutil.rmtree(models / "tiny")
    new_version(models.parent / "source-tiny", models / "tiny", "12")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["scores"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "tokens", 3])],
    )
    onnx.save(helper.make_model(graph), str(models / "tiny" / MODEL_FILE))  # a valid graph, fed other inputs
    recorded(models / "tiny")
    response = client.post("/v2/repository/models/tiny/load", headers=AUTH)
    assert response.status_code == 400 and "graph takes ('x',)" in response.json()["error"], response.text
    assert version_of(client) == old and index(client)["tiny"]["state"] == "READY"
