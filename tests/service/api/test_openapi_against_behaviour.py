"""Every route in /openapi.json against what it really answers: each documented status (with its media type) is
produced by a request here, and every status this file and the hostile catalogue observe on a documented route is
documented for it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.settings import Settings
from tests.helpers import ready_client
from tests.service.edge.test_malformed_requests import CATALOGUE

pytestmark = pytest.mark.trains

OK = {"sentences": [["The", "cat"]]}
KEY = "k-0123456789abcdef-truth"
CONTROL = "control-0123456789-truth"


def started(models_dir: Path, **settings: Any) -> TestClient:
    client: TestClient = ready_client(
        Settings(models=models_dir, default_model="tiny", inference_process=False, **settings)
    )
    return client


@pytest.fixture(scope="module")
def apps(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    keys = tmp_path_factory.mktemp("keys") / "keys"
    keys.write_text(KEY + "\n", encoding="utf-8")
    clients = {
        "plain": started(models_dir, max_body_bytes=4096, control_token=CONTROL),
        "keys": started(models_dir, api_keys_file=keys),
        "limited": started(models_dir, rate_limit=0.001, rate_burst=1),
        "tiny queue": started(models_dir, queue_size=1),
        "no time": started(models_dir, request_timeout_s=1e-6),
        "metrics elsewhere": started(models_dir, metrics_port=9),
        "corrections": started(models_dir, corrections_db=str(tmp_path_factory.mktemp("db") / "c.db"), review_sample=1),
        "database down": started(models_dir, corrections_db="postgresql://tagger@127.0.0.1:9/none"),
    }
    yield clients
    for client in clients.values():
        client.__exit__(None, None, None)


Trigger = Callable[[dict[str, TestClient]], Response]


def twice(app: str, method: str, path: str, **kwargs: Any) -> Trigger:
    """The second of two identical requests (the first spends the rate limit's one token)."""

    def run(apps: dict[str, TestClient]) -> Response:
        apps[app].request(method, path, **kwargs)
        return apps[app].request(method, path, **kwargs)

    return run


def one(app: str, method: str, path: str, **kwargs: Any) -> Trigger:
    return lambda apps: apps[app].request(method, path, **kwargs)


def draining(apps: dict[str, TestClient]) -> Response:
    state = apps["plain"].app.state.tagger  # type: ignore[attr-defined]
    state.draining = True
    try:
        return apps["plain"].get("/readyz")
    finally:
        state.draining = False


def tag_triggers(path: str) -> dict[str, Trigger]:
    return {
        "200": one("plain", "POST", path, json=OK),
        "400": one("plain", "POST", path, content=b"{", headers={"content-type": "application/json"}),
        "401": one("keys", "POST", path, json=OK),
        "413": one("plain", "POST", path, json={"texts": ["a" * 5000]}),
        "415": one("plain", "POST", path, content=b"{}", headers={"content-type": "text/plain"}),
        "422": one("plain", "POST", path, json={"sentences": [[]]}),
        "429": twice("limited", "POST", path, json=OK),
        "503": one("tiny queue", "POST", path, json={"sentences": [["a"], ["b"]]}),
        "504": one("no time", "POST", path, json=OK),
    }


TRIGGERS: dict[tuple[str, str], dict[str, Trigger]] = {
    ("post", "/v1/tag"): tag_triggers("/v1/tag"),
    ("post", "/v1/models/{model}/tag"): {
        **tag_triggers("/v1/models/tiny/tag"),
        "404": one("plain", "POST", "/v1/models/nope/tag", json=OK),
    },
    ("get", "/v1/models"): {
        "200": one("plain", "GET", "/v1/models"),
        "401": one("keys", "GET", "/v1/models"),
        "429": twice("limited", "GET", "/v1/models"),
    },
    ("get", "/v1/models/{model}"): {
        "200": one("plain", "GET", "/v1/models/tiny"),
        "401": one("keys", "GET", "/v1/models/tiny"),
        "404": one("plain", "GET", "/v1/models/nope"),
        "429": twice("limited", "GET", "/v1/models/tiny"),
    },
    ("get", "/v1/models/{model}/drift"): {
        "200": one("plain", "GET", "/v1/models/tiny/drift"),
        "401": one("keys", "GET", "/v1/models/tiny/drift"),
        "404": one("plain", "GET", "/v1/models/nope/drift"),
        "429": twice("limited", "GET", "/v1/models/tiny/drift"),
    },
    ("get", "/livez"): {"200": one("plain", "GET", "/livez")},
    ("get", "/readyz"): {"200": one("plain", "GET", "/readyz"), "503": draining},
    ("get", "/metrics"): {"200": one("plain", "GET", "/metrics"), "404": one("metrics elsewhere", "GET", "/metrics")},
}


# The corrections routes (service/api/corrections.py): off in "plain" (404 corrections_off), on in "corrections"
# (SQLite), and a PostgreSQL that is not there in "database down"
def a_correction(apps: dict[str, TestClient], tokens: list[str] | None = None) -> dict[str, Any]:
    tag = apps["corrections"].get("/v1/models/tiny").json()["tags"][0]
    tokens = tokens or [f"new{time.monotonic_ns()}"]  # a correction not stored before: 201
    return {"tokens": tokens, "tags": [tag] * len(tokens)}


def correct(app: str, times: int = 1, tokens: list[str] | None = None) -> Trigger:
    def run(apps: dict[str, TestClient]) -> Response:
        body = a_correction(apps, tokens)
        for _ in range(times - 1):
            apps[app].post("/v1/models/tiny/corrections", json=body)
        return apps[app].post("/v1/models/tiny/corrections", json=body)

    return run


CORRECTIONS = "/v1/models/tiny/corrections"
TRIGGERS |= {
    ("get", "/v1/models/{model}/review"): {
        "200": one("corrections", "GET", "/v1/models/tiny/review?limit=5"),
        "401": one("keys", "GET", "/v1/models/tiny/review"),
        "404": one("plain", "GET", "/v1/models/tiny/review"),
        "422": one("corrections", "GET", "/v1/models/tiny/review?limit=0"),
        "429": twice("limited", "GET", "/v1/models/tiny/review"),
        "503": one("database down", "GET", "/v1/models/tiny/review"),
    },
    ("delete", "/v1/models/{model}/review"): {
        "200": one("corrections", "DELETE", "/v1/models/tiny/review"),
        "401": one("keys", "DELETE", "/v1/models/tiny/review"),
        "404": one("plain", "DELETE", "/v1/models/tiny/review"),
        "429": twice("limited", "DELETE", "/v1/models/tiny/review"),
        "503": one("database down", "DELETE", "/v1/models/tiny/review"),
    },
    ("post", "/v1/models/{model}/corrections"): {
        "200": correct("corrections", times=2, tokens=["twice", "posted"]),
        "201": correct("corrections"),
        "400": one("plain", "POST", CORRECTIONS, content=b"{", headers={"content-type": "application/json"}),
        "401": one("keys", "POST", CORRECTIONS, json={"tokens": ["a"], "tags": ["X"]}),
        "404": one("plain", "POST", CORRECTIONS, json={"tokens": ["a"], "tags": ["X"]}),
        "413": one("plain", "POST", CORRECTIONS, json={"tokens": ["a" * 5000], "tags": ["X"]}),
        "415": one("plain", "POST", CORRECTIONS, content=b"{}", headers={"content-type": "text/plain"}),
        "422": one("corrections", "POST", CORRECTIONS, json={"tokens": ["a"], "tags": ["NOT-A-TAG"]}),
        "429": twice("limited", "POST", CORRECTIONS, json={"tokens": ["a"], "tags": ["X"]}),
        "503": correct("database down"),
    },
    ("get", "/v1/models/{model}/corrections"): {
        "200": one("corrections", "GET", CORRECTIONS + "?format=conllu"),
        "401": one("keys", "GET", CORRECTIONS),
        "404": one("plain", "GET", CORRECTIONS),
        "422": one("corrections", "GET", CORRECTIONS + "?format=xml"),
        "429": twice("limited", "GET", CORRECTIONS),
        "503": one("database down", "GET", CORRECTIONS),
    },
}

# The Open Inference Protocol's routes (service/oip/routes.py); "{version}" is the tiny model's
OIP_OK = {"inputs": [{"name": "tokens", "datatype": "BYTES", "shape": [1, 2], "data": ["The", "cat"]}]}


def v2(app: str, method: str, path: str, **kwargs: Any) -> Trigger:
    def run(apps: dict[str, TestClient]) -> Response:
        version = apps["plain"].get("/v2/models/tiny").json()["versions"][0]
        return apps[app].request(method, path.format(version=version), **kwargs)

    return run


def v2_twice(method: str, path: str, **kwargs: Any) -> Trigger:
    """The second of two identical requests to the rate-limited app."""
    trigger = v2("limited", method, path, **kwargs)

    def run(apps: dict[str, TestClient]) -> Response:
        trigger(apps)
        return trigger(apps)

    return run


def v2_draining(path: str) -> Trigger:
    def run(apps: dict[str, TestClient]) -> Response:
        state = apps["plain"].app.state.tagger  # type: ignore[attr-defined]
        state.draining = True
        try:
            return v2("plain", "GET", path)(apps)
        finally:
            state.draining = False

    return run


def v2_model(path: str, unknown: str) -> dict[str, Trigger]:
    return {
        "200": v2("plain", "GET", path),
        "401": v2("keys", "GET", path),
        "404": v2("plain", "GET", unknown),
        "429": v2_twice("GET", path),
    }


def v2_infer(path: str, unknown: str) -> dict[str, Trigger]:
    blank = {"inputs": [{**OIP_OK["inputs"][0], "data": ["The", " "]}]}
    two = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]}
    return {
        "200": v2("plain", "POST", path, json=OIP_OK),
        "400": v2("plain", "POST", path, content=b"{", headers={"content-type": "application/json"}),
        "401": v2("keys", "POST", path, json=OIP_OK),
        "404": v2("plain", "POST", unknown, json=OIP_OK),
        "413": v2("plain", "POST", path, json={"id": "a" * 5000, **OIP_OK}),
        "415": v2("plain", "POST", path, content=b"{}", headers={"content-type": "text/plain"}),
        "422": v2("plain", "POST", path, json=blank),
        "429": v2_twice("POST", path, json=OIP_OK),
        "503": v2("tiny queue", "POST", path, json=two),
        "504": v2("no time", "POST", path, json=OIP_OK),
    }


TRIGGERS |= {
    ("get", "/v2"): {"200": v2("plain", "GET", "/v2"), "401": v2("keys", "GET", "/v2"), "429": v2_twice("GET", "/v2")},
    ("get", "/v2/health/live"): {"200": v2("plain", "GET", "/v2/health/live")},
    ("get", "/v2/health/ready"): {
        "200": v2("plain", "GET", "/v2/health/ready"),
        "503": v2_draining("/v2/health/ready"),
    },
    ("get", "/v2/models/{model}"): v2_model("/v2/models/tiny", "/v2/models/nope"),
    ("get", "/v2/models/{model}/versions/{version}"): v2_model(
        "/v2/models/tiny/versions/{version}", "/v2/models/tiny/versions/0"
    ),
    ("get", "/v2/models/{model}/ready"): {
        **v2_model("/v2/models/tiny/ready", "/v2/models/nope/ready"),
        "503": v2_draining("/v2/models/tiny/ready"),
    },
    ("get", "/v2/models/{model}/versions/{version}/ready"): {
        **v2_model("/v2/models/tiny/versions/{version}/ready", "/v2/models/tiny/versions/0/ready"),
        "503": v2_draining("/v2/models/tiny/versions/{version}/ready"),
    },
    ("post", "/v2/models/{model}/infer"): v2_infer("/v2/models/tiny/infer", "/v2/models/nope/infer"),
    ("post", "/v2/models/{model}/versions/{version}/infer"): v2_infer(
        "/v2/models/tiny/versions/{version}/infer", "/v2/models/tiny/versions/0/infer"
    ),
}


# Model control (service/oip/control.py), on in "plain" with its token
AUTH = {"Authorization": f"Bearer {CONTROL}"}


def with_folder(name: str, metadata: str | None, trigger: Trigger) -> Trigger:
    """`trigger` with a folder `name` beside the served one, holding `metadata` (the tiny model's if None)."""

    def run(apps: dict[str, TestClient]) -> Response:
        models = apps["plain"].app.state.tagger.settings.models  # type: ignore[attr-defined]
        folder = models / name
        folder.mkdir()
        try:
            text = (models / "tiny" / "metadata.json").read_text() if metadata is None else metadata
            (folder / "metadata.json").write_text(text)
            return trigger(apps)
        finally:
            shutil.rmtree(folder)

    return run


def control(method: str, path: str, token: bool = True) -> Trigger:
    return one("plain", method, path, headers=AUTH if token else {})


def unload_found(apps: dict[str, TestClient]) -> Response:
    control("GET", "/v2/repository/index")(apps)  # the index finds the folder
    return control("POST", "/v2/repository/models/junk/unload")(apps)


TRIGGERS |= {
    (method.lower(), "/v2/repository/index"): {
        "200": control(method, "/v2/repository/index"),
        "401": control(method, "/v2/repository/index", token=False),
    }
    for method in ("GET", "POST")
} | {
    ("post", "/v2/repository/models/{model}/load"): {
        "200": control("POST", "/v2/repository/models/tiny/load"),  # serving these very files already
        "400": with_folder("junk", "{not json", control("POST", "/v2/repository/models/junk/load")),
        "401": control("POST", "/v2/repository/models/tiny/load", token=False),
        "404": control("POST", "/v2/repository/models/nope/load"),
        "409": with_folder("twin", None, control("POST", "/v2/repository/models/tiny/load")),
    },
    ("post", "/v2/repository/models/{model}/unload"): {
        "200": with_folder("junk", "{}", unload_found),  # a model in the index, not loaded: nothing to do
        "401": control("POST", "/v2/repository/models/tiny/unload", token=False),
        "404": control("POST", "/v2/repository/models/nope/unload"),
        "409": control("POST", "/v2/repository/models/tiny/unload"),  # the default model
    },
}


def with_candidate(trigger: Trigger, broken: bool = False, loaded: bool = False) -> Trigger:
    """`trigger` with a candidate for tiny under <models>/.shadows/ (a copy of tiny; `broken`: its graph cut;
    `loaded`: already running as tiny's shadow), cleaned up after."""

    def run(apps: dict[str, TestClient]) -> Response:
        models = apps["plain"].app.state.tagger.settings.models  # type: ignore[attr-defined]
        folder = models / ".shadows" / "tiny-next"
        shutil.copytree(models / "tiny", folder)
        if broken:
            (folder / "model.onnx").write_bytes(b"not a graph")
        try:
            if loaded:
                assert control("POST", SHADOW + "/load")(apps).status_code == 200
            return trigger(apps)
        finally:
            control("POST", SHADOW + "/discard")(apps)
            shutil.rmtree(folder, ignore_errors=True)

    return run


SHADOW = "/v2/repository/models/tiny/shadow"
TRIGGERS |= {
    ("get", "/v2/repository/models/{model}/shadow"): {
        "200": with_candidate(control("GET", SHADOW), loaded=True),
        "401": control("GET", SHADOW, token=False),
        "404": control("GET", SHADOW),  # no shadow
    },
    ("post", "/v2/repository/models/{model}/shadow/load"): {
        "200": with_candidate(control("POST", SHADOW + "/load")),
        "400": with_candidate(control("POST", SHADOW + "/load"), broken=True),
        "401": control("POST", SHADOW + "/load", token=False),
        "404": control("POST", SHADOW + "/load"),  # no candidate folder
        "409": with_candidate(with_folder(".shadows/tiny-twin", None, control("POST", SHADOW + "/load"))),
    },
    ("post", "/v2/repository/models/{model}/shadow/promote"): {
        # the candidate is a copy of the serving files: promoted, the same version serves on
        "200": with_candidate(control("POST", SHADOW + "/promote"), loaded=True),
        "401": control("POST", SHADOW + "/promote", token=False),
        "404": control("POST", SHADOW + "/promote"),
        "409": with_candidate(with_folder("twin", None, control("POST", SHADOW + "/promote")), loaded=True),
    },
    ("post", "/v2/repository/models/{model}/shadow/discard"): {
        "200": with_candidate(control("POST", SHADOW + "/discard"), loaded=True),
        "401": control("POST", SHADOW + "/discard", token=False),
        "404": control("POST", SHADOW + "/discard"),
    },
}


def documented(apps: dict[str, TestClient]) -> dict[tuple[str, str], dict[str, Any]]:
    schema = apps["plain"].get("/openapi.json").json()
    return {(method, path): op["responses"] for path, ops in schema["paths"].items() for method, op in ops.items()}


def test_every_documented_route_is_covered_here(apps: dict[str, TestClient]) -> None:
    assert set(documented(apps)) == set(TRIGGERS)


@pytest.mark.parametrize(
    ("route", "status"), [(route, status) for route, by in TRIGGERS.items() for status in by], ids=lambda v: str(v)
)
def test_each_documented_status_is_one_the_route_really_answers(
    apps: dict[str, TestClient], route: tuple[str, str], status: str
) -> None:
    responses = documented(apps)[route]
    assert status in responses, f"{route} answers {status}, which its documentation does not list"
    response = TRIGGERS[route][status](apps)
    assert str(response.status_code) == status, response.text
    media = response.headers["content-type"].split(";")[0]
    assert media in {m.split(";")[0] for m in responses[status].get("content", {})}, (route, status, media)


def test_every_documented_status_has_a_trigger(apps: dict[str, TestClient]) -> None:
    for route, responses in documented(apps).items():
        assert set(responses) <= set(TRIGGERS[route]), f"{route} documents {set(responses) - set(TRIGGERS[route])}"


def test_the_statuses_the_hostile_catalogue_observes_are_documented(apps: dict[str, TestClient]) -> None:
    routes = documented(apps)
    paths = {
        "/v1/tag": "/v1/tag",
        "/v1/models/nope/tag": "/v1/models/{model}/tag",
        "/v1/models/nope": "/v1/models/{model}",
    }
    for name, method, path, _, _, status, _ in CATALOGUE:
        route = (method.lower(), paths.get(path, path))
        if route in routes:
            assert str(status) in routes[route], f"{name}: {route} answered {status}, undocumented"
