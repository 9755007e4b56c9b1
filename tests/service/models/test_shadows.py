"""Shadow versions against a real `tagger serve`: a candidate export beside the serving one, compared on copies of
live requests, killed without harm, promoted through the swap, and refused as a failed load when it cannot load."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, get, metrics, post, start_server, until, wait_ready
from tests.service.models.test_repository import AUTH, TOKEN, broken

pytestmark = [pytest.mark.trains, pytest.mark.server]


@pytest.fixture(scope="module")
def candidate(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny model of the same name: the same data and sizes, another seed and fewer epochs, so it differs."""
    from model.export import export
    from model.train import train

    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, seed=8, epochs=1))
    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(config, run)
    out = tmp_path_factory.mktemp("candidate") / "tiny"
    export(run, out)
    return out


@pytest.fixture
def server(tiny_export: Path, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(tiny_export, models / "tiny")
    port = free_port()
    process = start_server(models, port, TAGGER_CONTROL_TOKEN=TOKEN, TAGGER_SHADOW_SHARE="1.0")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, seconds=120)
        yield base, models, process
    finally:
        process.terminate()
        process.wait(30)


def control(base: str, path: str, method: str = "POST") -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/v2/repository/models/tiny/{path}", headers=AUTH, method=method)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def dev_sentences(ewt_sample: dict[str, Path], n: int = 60) -> list[list[str]]:
    from tagger.readers import read_corpus

    return [s.tokens for s in read_corpus(ewt_sample["dev"])[:n]]


def tag_all(base: str, sentences: list[list[str]]) -> list[bytes]:
    """Each sentence in a request of its own; the raw answers."""
    answers = []
    for sentence in sentences:
        status, body = post(f"{base}/v1/models/tiny/tag", {"sentences": [sentence], "scores": True})
        assert status == 200
        answers.append(body)
    return answers


def test_a_shadow_is_compared_on_live_traffic_without_touching_the_answers(
    server: tuple[str, Path, subprocess.Popen[str]], candidate: Path, tiny_export: Path, ewt_sample: dict[str, Path]
) -> None:
    base, models, _ = server
    sentences = dev_sentences(ewt_sample)
    alone = tag_all(base, sentences)
    assert control(base, "shadow/load")[0] == 404  # no candidate yet
    shutil.copytree(candidate, models / ".shadows" / "tiny-next")
    status, loaded = control(base, "shadow/load")
    assert status == 200 and loaded["sentences"] == 0, loaded
    beside = tag_all(base, sentences)
    assert beside == alone  # byte for byte: the shadow changes no answer
    until(lambda: control(base, "shadow", "GET")[1]["sentences"] == len(sentences), 60)
    summary = control(base, "shadow", "GET")[1]

    # the same sentences tagged offline by both exports: the figures fall below 1 exactly where they differ
    from tagger.runtime import load_runtime

    serving, shadow = (load_runtime(folder).tag_sentences(sentences) for folder in (tiny_export, candidate))
    pairs = [
        (a, b) for one, other in zip(serving, shadow, strict=True) for a, b in zip(one.tags, other.tags, strict=True)
    ]
    changes = Counter((a, b) for a, b in pairs if a != b)
    assert changes, "the two exports should differ somewhere (another seed, fewer epochs)"
    assert summary["tokens"] == len(pairs)
    assert summary["tag_agreement"] == round(sum(a == b for a, b in pairs) / len(pairs), 6)
    top = {(d["serving"], d["shadow"]): d["tokens"] for d in summary["differing_tags"]}
    assert top == dict(changes.most_common(len(top)))
    assert 0 < len(summary["disagreeing_sentences"]) <= 20
    assert summary["mean_latency_s"]["serving"] > 0 and summary["mean_latency_s"]["shadow"] > 0
    text = metrics(base)
    assert f'tagger_shadow_tokens_total{{model="tiny",serving="{summary["serving_version"]}"' in text


def test_a_killed_shadow_disturbs_nothing_and_promotion_serves_it(
    server: tuple[str, Path, subprocess.Popen[str]], candidate: Path, ewt_sample: dict[str, Path]
) -> None:
    base, models, process = server
    sentences = dev_sentences(ewt_sample, 20)
    alone = tag_all(base, sentences)
    shutil.copytree(candidate, models / ".shadows" / "tiny-next")
    status, loaded = control(base, "shadow/load")
    assert status == 200
    shadow_version = loaded["shadow_version"]
    pid = newest_inference_process(process.pid)  # the shadow's: started after the serving version's
    os.kill(pid, signal.SIGKILL)
    assert tag_all(base, sentences) == alone  # the serving version answers as before, byte for byte
    status, entry = control(base, "shadow/promote")
    assert status == 200 and entry["version"] == shadow_version, entry
    status, body = post(f"{base}/v1/models/tiny/tag", {"sentences": [["The", "cat", "."]]})
    assert status == 200 and json.loads(body)["version"] == shadow_version
    assert not (models / ".shadows" / "tiny-next").exists() and any((models / ".retired").iterdir())
    assert control(base, "shadow", "GET")[0] == 404  # promoted: no shadow left


def newest_inference_process(server: int) -> int:
    """The server's most recently started inference process (a spawned child; not the resource tracker)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
        if int(fields[1]) == server and b"spawn_main" in command:
            children.append((int(fields[19]), int(entry)))  # (start time in ticks, pid)
    assert len(children) >= 2, children
    return max(children)[1]


def test_a_shadow_that_cannot_load_is_a_failed_load(
    server: tuple[str, Path, subprocess.Popen[str]], candidate: Path
) -> None:
    base, models, _ = server
    broken(shutil.copytree(candidate, models / ".shadows" / "tiny-bad"))
    status, body = control(base, "shadow/load")
    assert status == 400 and "failed to load" in body["error"], body
    assert 'tagger_model_changes_total{change="failed",model="tiny"} 1.0' in metrics(base)
    status, _ = post(f"{base}/v1/models/tiny/tag", {"sentences": [["The", "cat", "."]]})
    assert status == 200
    assert get(f"{base}/readyz")[0] == 200


def test_the_optional_rule_promotes_a_shadow_that_passes_its_thresholds(
    tiny_export: Path, candidate: Path, tmp_path: Path, ewt_sample: dict[str, Path]
) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    models = tmp_path / "models"
    shutil.copytree(tiny_export, models / "tiny")
    shutil.copytree(candidate, models / ".shadows" / "tiny-next")
    strict = {"shadow_min_agreement": 1.0, "shadow_min_confidence": 0.0}  # the two exports differ: never passes
    for thresholds, promoted in ((strict, False), ({"shadow_min_agreement": 0.0, "shadow_min_confidence": 0.0}, True)):
        settings = Settings(
            models=models, default_model="tiny", control_token=TOKEN, shadow_promote_after=10, **thresholds
        )
        with TestClient(create_app(settings)) as client:
            until(lambda c=client: c.get("/readyz").status_code == 200, 60)
            loaded = client.post("/v2/repository/models/tiny/shadow/load", headers=AUTH)
            assert loaded.status_code == 200, loaded.text
            for sentence in dev_sentences(ewt_sample, 30):
                assert client.post("/v1/models/tiny/tag", json={"sentences": [sentence]}).status_code == 200
            version = loaded.json()["shadow_version"]

            def serves(c: TestClient = client, v: str = version) -> bool:
                return bool(c.post("/v1/models/tiny/tag", json={"sentences": [["The"]]}).json()["version"] == v)

            if promoted:
                until(serves, 60)
                assert client.get("/v2/repository/models/tiny/shadow", headers=AUTH).status_code == 404
            else:
                time.sleep(1)
                assert not serves()
                assert client.get("/v2/repository/models/tiny/shadow", headers=AUTH).json()["sentences"] >= 10


def test_under_load_from_tritonclient_and_v1_clients_the_answers_are_those_without_a_shadow(
    server: tuple[str, Path, subprocess.Popen[str]], candidate: Path, ewt_sample: dict[str, Path]
) -> None:
    """Eight clients at once, half /v1 JSON, half tritonclient (binary tensors), every sentence answered the same
    with the shadow taking copies as without it; the shadow compares what it was sent."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import tritonclient.http as triton

    base, models, _ = server
    sentences = dev_sentences(ewt_sample, 48)
    address = base.removeprefix("http://")

    def v1(sentence: list[str]) -> bytes:
        status, body = post(f"{base}/v1/models/tiny/tag", {"sentences": [sentence], "scores": True})
        assert status == 200
        return body

    def v2(sentence: list[str]) -> bytes:
        client = triton.InferenceServerClient(address)
        given = triton.InferInput("tokens", [1, len(sentence)], "BYTES")
        given.set_data_from_numpy(np.array([sentence], dtype=object), binary_data=True)
        wanted = [triton.InferRequestedOutput(name, binary_data=True) for name in ("tags", "scores")]
        result = client.infer("tiny", [given], outputs=wanted)
        tags = [t.decode() if isinstance(t, bytes) else str(t) for t in result.as_numpy("tags").ravel()]
        return json.dumps(tags).encode() + result.as_numpy("scores").tobytes()  # the scores' float32 bytes

    def load() -> list[bytes]:
        calls = [(v1 if i % 2 else v2, s) for i, s in enumerate(sentences)]
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda call: call[0](call[1]), calls))

    alone = load()
    shutil.copytree(candidate, models / ".shadows" / "tiny-next")
    assert control(base, "shadow/load")[0] == 200
    assert load() == alone
    until(lambda: control(base, "shadow", "GET")[1]["sentences"] == len(sentences), 60)
