"""tritonclient, as a platform team would use it, against a real `tagger serve` on the shipped models: health,
metadata, inference in JSON and in the binary tensor extension (tritonclient's default), errors, and the same
answers as /v1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import ROOT
from tests.helpers import free_port, metrics, post, start_server, wait_ready

pytestmark = pytest.mark.server

TEXTS = ["Tim Cook visited Berlin on Monday.", "Zoë lives in São Paulo.", "Hi"]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """host:port of a `tagger serve` on the shipped models (inference processes, warm-up: as deployed)."""
    port = free_port()
    process: subprocess.Popen[str] = start_server(ROOT / "exports", port, TAGGER_DEFAULT_MODEL="en-upos")
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, seconds=120)
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(server) as client:
        yield client


def strings(array: np.ndarray) -> Any:
    """A BYTES output (bytes in binary, str in JSON) as nested lists of str."""
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(array).tolist()


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("en-ner") and client.is_model_ready("en-upos")
    assert not client.is_model_ready("nope")
    server = client.get_server_metadata()
    assert server["name"] == "tagger" and "binary_tensor_data" in server["extensions"]
    model = client.get_model_metadata("en-ner")
    assert model["platform"] == "onnxruntime_onnx" and len(model["versions"]) == 1
    assert client.is_model_ready("en-ner", model_version=model["versions"][0])
    assert [o["name"] for o in model["outputs"]] == ["tags", "scores", "top_k_tags", "top_k_scores", "offsets", "spans"]
    with pytest.raises(InferenceServerException, match="not served") as refused:
        client.get_model_metadata("nope")
    assert refused.value.status() == "404"


def infer(client: triton.InferenceServerClient, binary: bool, model: str = "en-ner") -> triton.InferResult:
    given = triton.InferInput("text", [len(TEXTS)], "BYTES")
    given.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=binary)
    names = ["tags", "scores", "offsets", "spans"]
    wanted = [triton.InferRequestedOutput(name, binary_data=binary) for name in names]
    return client.infer(model, [given], outputs=wanted, request_id="r-1")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_answers_what_v1_answers(server: str, client: triton.InferenceServerClient, binary: bool) -> None:
    result = infer(client, binary)
    response = result.get_response()
    assert response["id"] == "r-1" and response["model_name"] == "en-ner"
    status, body = post(f"http://{server}/v1/models/en-ner/tag", {"texts": TEXTS, "scores": True})
    assert status == 200
    results = json.loads(body)["results"]
    tags, scores, offsets = strings(result.as_numpy("tags")), result.as_numpy("scores"), result.as_numpy("offsets")
    assert tags[2] == [results[2]["tags"][0]] + [""] * (len(tags[2]) - 1)  # padded to the longest text
    for i, one in enumerate(results):
        n = len(one["tags"])
        assert tags[i][:n] == one["tags"]
        np.testing.assert_allclose(scores[i, :n], one["scores"], atol=1e-6)
        assert offsets[i, :n].tolist() == one["offsets"] and (offsets[i, n:] == -1).all()
        assert json.loads(strings(result.as_numpy("spans"))[i]) == one["spans"]


def test_by_default_every_output_comes_back_in_binary(client: triton.InferenceServerClient) -> None:
    given = triton.InferInput("tokens", [2, 3], "BYTES")
    given.set_data_from_numpy(np.array([["The", "cat", "sat"], ["Hi", "", ""]], dtype=object))
    result = client.infer("en-upos", [given], parameters={"top_k": 2})  # no outputs named: tritonclient asks binary
    assert {o["name"]: o["parameters"]["binary_data_size"] > 0 for o in result.get_response()["outputs"]} == {
        "tags": True,
        "top_k_tags": True,
        "top_k_scores": True,
    }
    assert strings(result.as_numpy("tags")) == [["DET", "NOUN", "VERB"], ["INTJ", "", ""]]
    assert result.as_numpy("top_k_tags").shape == (2, 3, 2) and result.as_numpy("top_k_scores")[1, 1:].sum() == 0


def test_refusals_are_exceptions_with_the_servers_message(server: str, client: triton.InferenceServerClient) -> None:
    given = triton.InferInput("text", [1], "BYTES")
    given.set_data_from_numpy(np.array(["a" * 30_000], dtype=object))
    with pytest.raises(InferenceServerException, match="TAGGER_MAX_TEXT_CHARS") as refused:
        client.infer("en-upos", [given])
    assert refused.value.status() == "422"
    wrong = triton.InferInput("text", [1], "FP32")
    wrong.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    with pytest.raises(InferenceServerException, match=r"inputs\[0\]\.datatype") as refused:
        client.infer("en-upos", [wrong])
    assert refused.value.status() == "400"
    text = metrics(f"http://{server}")
    assert 'model="en-upos",route="/v2/models/{model}/infer",status="422"' in text
    assert 'tagger_rejections_total{reason="too_many_characters"}' in text
