"""The Open Inference Protocol (KServe v2) REST API in-process, on the shipped models: every route, the same
answers as /v1, tritonclient's own encoder and decoder for the binary tensor extension, the protocol's JSON
schema (transcribed from its spec), and a table of malformed requests that each get a 4xx in its error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.conftest import EWT, ROOT, need
from tests.helpers import ready_client

EXPORTS = ROOT / "exports"
INFER = "/v2/models/en-upos/infer"
LIMITS = {"max_sentences": 4, "max_tokens": 20, "max_text_chars": 200, "max_top_k": 3, "max_response_values": 60}
SENTENCES = [
    ["The", "cat", "sat", "on", "the", "mat", "."],
    ["Barack", "Obama", "visited", "Paris", "and", "Berlin", "."],
    ["Hi"],
    ["Ünïcödé", "names", "like", "Zoë", "Saldaña", "work", "too", "!"],
]
TEXTS = ["Tim Cook visited Berlin on Monday.", "I don't like  green eggs.", "   ", "Zoë lives in São Paulo 🙂."]

# The protocol's REST objects, transcribed from kserve/open-inference-protocol
# specification/protocol/open_inference_rest.yaml (components.schemas); `data` of a response output is
# required there, which the binary tensor extension relaxes (its outputs carry parameters.binary_data_size).
OIP = {
    "$defs": {
        "parameters": {"type": "object"},
        "tensor_data": {
            "type": "array",
            "items": {"anyOf": [{"$ref": "#/$defs/tensor_data"}, {"type": ["number", "string", "boolean"]}]},
        },
        "metadata_tensor": {
            "type": "object",
            "required": ["name", "datatype", "shape"],
            "properties": {
                "name": {"type": "string"},
                "datatype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
            },
        },
        "request_input": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"},
                "parameters": {"$ref": "#/$defs/parameters"},
                "data": {"$ref": "#/$defs/tensor_data"},
            },
        },
        "request_output": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": {"$ref": "#/$defs/parameters"}},
        },
        "response_output": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"},
                "parameters": {"$ref": "#/$defs/parameters"},
                "data": {"$ref": "#/$defs/tensor_data"},
            },
        },
    },
    "metadata_server_response": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "metadata_model_response": {
        "type": "object",
        "required": ["name", "platform"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/$defs/metadata_tensor"}},
            "outputs": {"type": "array", "items": {"$ref": "#/$defs/metadata_tensor"}},
        },
    },
    "inference_request": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"$ref": "#/$defs/parameters"},
            "inputs": {"type": "array", "items": {"$ref": "#/$defs/request_input"}},
            "outputs": {"type": "array", "items": {"$ref": "#/$defs/request_output"}},
        },
    },
    "inference_response": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"$ref": "#/$defs/parameters"},
            "outputs": {"type": "array", "items": {"$ref": "#/$defs/response_output"}},
        },
    },
    "error_response": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
}


def conforms(body: Any, kind: str) -> None:
    jsonschema.validate(body, {**OIP[kind], "$defs": OIP["$defs"]})


def started(**settings: Any) -> TestClient:
    return ready_client(Settings(models=EXPORTS, inference_process=False, warmup=False, **settings))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    client = started()
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def tight() -> Iterator[TestClient]:
    client = started(max_body_bytes=8192, **LIMITS)
    yield client
    client.__exit__(None, None, None)


def text_input(texts: list[str]) -> dict[str, Any]:
    return {"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}


def tokens_input(sentences: list[list[str]], nested: bool = False) -> dict[str, Any]:
    width = max(len(s) for s in sentences)
    rows = [s + [""] * (width - len(s)) for s in sentences]
    data = rows if nested else [token for row in rows for token in row]
    return {"name": "tokens", "datatype": "BYTES", "shape": [len(rows), width], "data": data}


def outputs(body: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each JSON output as an array of its shape."""
    return {o["name"]: np.array(o["data"], dtype=object).reshape(o["shape"]) for o in body["outputs"]}


def test_server_metadata_and_health(client: TestClient) -> None:
    metadata = client.get("/v2").json()
    conforms(metadata, "metadata_server_response")
    assert metadata["name"] == "tagger" and "binary_tensor_data" in metadata["extensions"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_readiness_follows_readyz(client: TestClient) -> None:
    state = client.app.state.tagger  # type: ignore[attr-defined]
    state.draining = True
    try:
        assert client.get("/v2/health/ready").status_code == 503 == client.get("/readyz").status_code
        refused = client.get("/v2/models/en-upos/ready")
        assert refused.status_code == 503 and refused.json() == {"name": "en-upos", "ready": False}
    finally:
        state.draining = False
    assert client.get("/v2/models/en-upos/ready").json() == {"name": "en-upos", "ready": True}


@pytest.mark.parametrize(("model", "spans"), [("en-upos", False), ("en-ner", True)])
def test_model_metadata_names_its_inputs_outputs_and_version(client: TestClient, model: str, spans: bool) -> None:
    metadata = client.get(f"/v2/models/{model}").json()
    conforms(metadata, "metadata_model_response")
    (version,) = metadata["versions"]
    assert version == client.get(f"/v1/models/{model}").json()["version"] and metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
        {"name": "tokens", "datatype": "BYTES", "shape": [-1, -1]},
    ]
    shapes = {o["name"]: (o["datatype"], o["shape"]) for o in metadata["outputs"]}
    assert shapes["tags"] == ("BYTES", [-1, -1]) and shapes["scores"] == ("FP32", [-1, -1])
    assert shapes["offsets"] == ("INT32", [-1, -1, 2]) and shapes["top_k_scores"] == ("FP32", [-1, -1, -1])
    assert ("spans" in shapes) == spans
    assert client.get(f"/v2/models/{model}/versions/{version}").json() == metadata
    assert client.get(f"/v2/models/{model}/versions/{version}/ready").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/en-upos/versions/0/ready",
        "/v2/models/en-upos/versions/1",
    ],
)
def test_an_unknown_model_or_version_is_a_404_in_the_protocols_shape(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and set(response.json()) == {"error"}
    assert "nope" in response.json()["error"] or "version" in response.json()["error"]
    assert client.post(path.removesuffix("/ready") + "/infer", json={"inputs": [text_input(["a"])]}).status_code == 404


def v1(client: TestClient, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(f"/v1/models/{model}/tag", json={**body, "scores": True, "top_k": 3})
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def v2(client: TestClient, model: str, given: dict[str, Any]) -> dict[str, np.ndarray]:
    body = {"id": "same", "inputs": [given], "parameters": {"scores": True, "top_k": 3}}
    response = client.post(f"/v2/models/{model}/infer", json=body)
    assert response.status_code == 200, response.text
    conforms(response.json(), "inference_response")
    assert response.json()["id"] == "same" and response.json()["model_name"] == model
    return outputs(response.json())


def ewt_sentences(n: int) -> list[list[str]]:
    """The first n sentences of EWT's test set (their FORM column), or a skip."""
    lines = need(EWT / "en_ewt-ud-test.conllu").read_text(encoding="utf-8").split("\n\n")[:n]
    return [
        [row.split("\t")[1] for row in block.splitlines() if row and row[0].isdigit() and row.split("\t")[0].isdigit()]
        for block in lines
    ]


def agree(results: list[dict[str, Any]], got: dict[str, np.ndarray], text: bool) -> None:
    """v2's padded tensors hold exactly v1's results."""
    for i, result in enumerate(results):
        n = len(result["tags"])
        assert list(got["tags"][i, :n]) == result["tags"] and set(got["tags"][i, n:]) <= {""}
        assert [float(s) for s in got["scores"][i, :n]] == result["scores"]
        assert [list(row) for row in got["top_k_tags"][i, :n]] == [[b["tag"] for b in t] for t in result["top_k"]]
        best = [[b["probability"] for b in t] for t in result["top_k"]]
        assert [[float(p) for p in row] for row in got["top_k_scores"][i, :n]] == best
        assert ("offsets" in got) == text
        if text:
            assert got["offsets"][i, :n].tolist() == result["offsets"] and set(got["offsets"][i, n:].flat) <= {-1}
        if "spans" in result:
            assert json.loads(got["spans"][i]) == result["spans"]


@pytest.mark.parametrize("model", ["en-upos", "en-ner"])
def test_v2_answers_what_v1_answers_for_the_same_tokens(client: TestClient, model: str) -> None:
    for sentences in (SENTENCES, SENTENCES[2:3]):
        results = v1(client, model, {"sentences": sentences})
        agree(results, v2(client, model, tokens_input(sentences)), text=False)
        agree(results, v2(client, model, tokens_input(sentences, nested=True)), text=False)


@pytest.mark.parametrize("model", ["en-upos", "en-ner"])
def test_v2_answers_what_v1_answers_for_the_same_texts(client: TestClient, model: str) -> None:
    results = v1(client, model, {"texts": TEXTS})
    got = v2(client, model, text_input(TEXTS))
    agree(results, got, text=True)
    assert got["tags"].shape == (len(TEXTS), max(len(r["tags"]) for r in results))  # the blank text: all padding


def test_v2_answers_what_v1_answers_on_real_sentences(client: TestClient) -> None:
    sentences = ewt_sentences(40)
    for model in ("en-upos", "en-ner"):
        for batch in (sentences[:20], sentences[20:]):
            agree(v1(client, model, {"sentences": batch}), v2(client, model, tokens_input(batch)), text=False)


def test_outputs_by_default_and_as_asked(client: TestClient) -> None:
    default = client.post("/v2/models/en-ner/infer", json={"inputs": [text_input(["Paris is big."])]}).json()
    assert [o["name"] for o in default["outputs"]] == ["tags", "offsets", "spans"] and "id" not in default
    asked = {"inputs": [tokens_input([["Paris"]])], "outputs": [{"name": "scores"}, {"name": "tags"}]}
    answer = client.post("/v2/models/en-ner/infer", json=asked).json()
    assert [(o["name"], o["shape"]) for o in answer["outputs"]] == [("scores", [1, 1]), ("tags", [1, 1])]


def binary_request(texts: list[str], asked: list[str], binary_out: bool) -> tuple[bytes, dict[str, str]]:
    """A request as tritonclient encodes it: BYTES input in binary, outputs binary or JSON."""
    given = triton.InferInput("text", [len(texts)], "BYTES")
    given.set_data_from_numpy(np.array(texts, dtype=object), binary_data=True)
    wanted = [triton.InferRequestedOutput(name, binary_data=binary_out) for name in asked]
    body, json_size = triton.InferenceServerClient.generate_request_body([given], wanted, parameters={"top_k": 2})
    assert json_size is not None
    return body, {"Inference-Header-Content-Length": str(json_size)}


@pytest.mark.parametrize("binary_out", [True, False])
def test_the_binary_tensor_extension_as_tritonclient_encodes_and_decodes_it(
    client: TestClient, binary_out: bool
) -> None:
    asked = ["tags", "scores", "top_k_tags", "top_k_scores", "offsets", "spans"]
    body, headers = binary_request(TEXTS, asked, binary_out)
    response = client.post("/v2/models/en-ner/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    assert (length is not None) == binary_out
    assert response.headers["content-type"] == ("application/octet-stream" if binary_out else "application/json")
    result = triton.InferenceServerClient.parse_response_body(
        response.content, header_length=int(length) if length else None
    )
    plain = v2(client, "en-ner", text_input(TEXTS))  # top_k 3: its first 2 are top_k 2's
    assert strings(result.as_numpy("tags")) == plain["tags"].tolist()
    np.testing.assert_allclose(result.as_numpy("scores"), plain["scores"].astype(float), atol=1e-6)
    assert strings(result.as_numpy("top_k_tags")) == plain["top_k_tags"][:, :, :2].tolist()
    np.testing.assert_allclose(
        result.as_numpy("top_k_scores"), plain["top_k_scores"][:, :, :2].astype(float), atol=1e-6
    )
    assert result.as_numpy("offsets").tolist() == plain["offsets"].tolist()
    assert result.as_numpy("offsets").dtype == np.int32 and result.as_numpy("scores").dtype == np.float32
    assert [json.loads(s) for s in strings(result.as_numpy("spans"))] == [json.loads(s) for s in plain["spans"]]


def strings(array: np.ndarray) -> Any:
    """A BYTES output as tritonclient gives it (bytes in binary, str in JSON), as nested lists of str."""
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(array).tolist()


def test_binary_is_per_output_or_for_all(client: TestClient) -> None:
    body = {
        "inputs": [text_input(["Hi there"])],
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "tags", "parameters": {"binary_data": False}}, {"name": "offsets"}],
    }
    response = client.post(INFER, json=body)
    header = json.loads(response.content[: int(response.headers["inference-header-content-length"])])
    tags, offsets = header["outputs"]
    assert tags["data"] == ["INTJ", "ADV"] and "parameters" not in tags
    assert offsets["parameters"] == {"binary_data_size": 16} and "data" not in offsets
    assert np.frombuffer(response.content[-16:], "<i4").tolist() == [0, 2, 3, 8]


def test_tritonclients_json_requests_conform_to_the_protocol(client: TestClient) -> None:
    given = triton.InferInput("tokens", [1, 2], "BYTES")
    given.set_data_from_numpy(np.array([["Hi", "there"]], dtype=object), binary_data=False)
    body, json_size = triton.InferenceServerClient.generate_request_body(
        [given], [triton.InferRequestedOutput("tags", binary_data=False)], request_id="7"
    )
    assert json_size is None
    conforms(json.loads(body), "inference_request")
    response = client.post(INFER, content=body)  # tritonclient sends no content type
    assert response.status_code == 200 and outputs(response.json())["tags"].tolist() == [["INTJ", "ADV"]]


TEXT = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}
TOKENS = {"name": "tokens", "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}
JSON = {"content-type": "application/json"}


def body(*inputs: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **fields}).encode()


def binary(size: str) -> dict[str, str]:
    return {"Inference-Header-Content-Length": size}


def text(**changed: Any) -> dict[str, Any]:
    return {**TEXT, **changed}


def tokens(**changed: Any) -> dict[str, Any]:
    return {**TOKENS, **changed}


def packed(raw: bytes, size: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A text input [1] whose data is `raw`, in the binary tensor extension: (body, headers)."""
    given = {"name": "text", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": size or len(raw)}}
    head = body(given)
    return head + raw, binary(str(len(head)))


OK = body(TEXT)
# (name, body, extra headers, status, reason ("" for invalid_request), words the message holds)
MALFORMED: list[tuple[str, bytes, dict[str, str], int, str, str]] = [
    ("no body", b"", {}, 400, "invalid_json", "not valid JSON"),
    ("truncated", b'{"inputs": [', {}, 400, "invalid_json", "not valid JSON"),
    ("trailing garbage", OK + b" x", {}, 400, "invalid_json", "not valid JSON"),
    ("NaN", b'{"inputs": [], "parameters": {"top_k": NaN}}', {}, 400, "invalid_json", "NaN"),
    ("nested 3,000 deep", b"[" * 3000 + b"]" * 3000, {}, 400, "invalid_json", "not valid JSON"),
    ("5,000 digits", b'{"inputs": [], "id": ' + b"9" * 5000 + b"}", {}, 400, "invalid_json", "not valid JSON"),
    ("not UTF-8", b'{"id": "caf\xe9", "inputs": []}', {}, 400, "invalid_utf8", "UTF-8"),
    ("a JSON array", b"[]", {}, 400, "", "body"),
    ("null", b"null", {}, 400, "", "body"),
    ("no inputs", b"{}", {}, 400, "", "inputs"),
    ("empty inputs", body(), {}, 400, "", "inputs: give one input"),
    ("both inputs", body(TEXT, TOKENS), {}, 400, "", "got 2"),
    ("unknown input", body(text(name="words")), {}, 400, "", "words"),
    ("wrong datatype", body(text(datatype="FP32")), {}, 400, "", "inputs[0].datatype"),
    ("shape's rank", body(text(shape=[1, 1])), {}, 400, "", "inputs[0].shape"),
    ("shape != data", body(text(shape=[2])), {}, 400, "", "shape [2] holds 2"),
    ("negative shape", body(text(shape=[-1])), {}, 400, "", "inputs[0].shape[0]"),
    ("no texts", body(text(shape=[0], data=[])), {}, 400, "", "N is 0"),
    ("a number", body(text(data=[3])), {}, 400, "", "inputs[0].data[0]"),
    ("ragged rows", body(tokens(shape=[2, 2], data=[["a", "b"], ["c"]])), {}, 400, "", "inputs[0].data[1]"),
    ("padding, then a token", body(tokens(data=["", "b"])), {}, 400, "", "padding"),
    ("no data", body({k: v for k, v in TEXT.items() if k != "data"}), {}, 400, "", "inputs[0].data"),
    ("unknown field", body(TEXT, model=1), {}, 400, "", "model: unknown field"),
    ("unknown parameter", body(TEXT, parameters={"priority": 1}), {}, 400, "", "parameters.priority"),
    ("top_k a string", body(TEXT, parameters={"top_k": "2"}), {}, 400, "", "parameters.top_k"),
    ("top_k 1.5", body(TEXT, parameters={"top_k": 1.5}), {}, 400, "", "parameters.top_k"),
    ("id a number", body(TEXT, id=5), {}, 400, "", "id"),
    ("id null", body(TEXT, id=None), {}, 400, "", "id: Value error, null is not allowed"),
    ("input parameters null", body(text(parameters=None)), {}, 400, "", "inputs[0].parameters"),
    ("unknown output", body(TEXT, outputs=[{"name": "spans"}]), {}, 400, "", "outputs[0].name"),
    ("output twice", body(TEXT, outputs=[{"name": "tags"}, {"name": "tags"}]), {}, 400, "", "twice"),
    ("offsets of tokens", body(TOKENS, outputs=[{"name": "offsets"}]), {}, 400, "", "offsets"),
    ("top_k_tags, no k", body(TEXT, outputs=[{"name": "top_k_tags"}]), {}, 400, "", "parameters.top_k"),
    (
        "classification extension",
        body(TEXT, outputs=[{"name": "tags", "parameters": {"classification": 2}}]),
        {},
        400,
        "",
        "classification: unknown field",
    ),
    (
        "binary size, no header",
        body({k: v for k, v in text(parameters={"binary_data_size": 5}).items() if k != "data"}),
        {},
        400,
        "",
        "no Inference-Header-Content-Length",
    ),
    ("header not a number", OK, binary("x"), 400, "", "Inference-Header-Content-Length"),
    ("an id with a lone surrogate", body(TEXT, id="\ud800"), {}, 400, "", "id holds a lone UTF-16 surrogate"),
    ("header past the body", OK, binary("999"), 400, "", "Inference-Header-Content-Length"),
    ("bytes, no binary input", OK + b"xyz", binary(str(len(OK))), 400, "", "3 bytes follow"),
    ("binary: a length cut short", *packed(b"\x01\x00"), 400, "", "ends inside element 0"),
    ("binary: an element cut short", *packed(b"\x05\x00\x00\x00ab"), 400, "", "ends inside element 0"),
    ("binary: not UTF-8", *packed(b"\x01\x00\x00\x00\xff"), 400, "", "element 0 is not valid UTF-8"),
    ("binary: more than the shape", *packed(b"\x01\x00\x00\x00a" * 2), 400, "", "holds 1"),
    ("binary: size is not the bytes", *packed(b"\x01\x00\x00\x00a", size=9), 400, "", "binary_data_size is 9"),
    ("text/plain", OK, {"content-type": "text/plain"}, 415, "unsupported_media_type", "content-type"),
    ("gzip", OK, {"content-encoding": "gzip"}, 415, "unsupported_media_type", "gzip"),
    ("over the body limit", body(TEXT, id="a" * 9000), {}, 413, "body_too_large", "TAGGER_MAX_BODY_BYTES"),
    ("top_k over the limit", body(TEXT, parameters={"top_k": 4}), {}, 422, "top_k_too_large", "top_k is 4"),
    (
        "top_k over, not asked",
        body(TEXT, parameters={"top_k": 4}, outputs=[]),
        {},
        422,
        "top_k_too_large",
        "limit is 3",
    ),
    ("too many texts", body(text(shape=[5], data=list("abcde"))), {}, 422, "too_many_items", "MAX_SENTENCES"),
    ("a text too long", body(text(data=["a " * 101])), {}, 422, "too_many_characters", "text[0] has 202"),
    ("a blank token", body(tokens(data=["a", " "])), {}, 422, "empty_token", "tokens[0][1]"),
    ("a sentence of padding", body(tokens(data=["", ""])), {}, 422, "empty_sentence", "tokens[0]"),
    ("rows too long", body(tokens(shape=[1, 21], data=[])), {}, 422, "too_many_tokens", "TAGGER_MAX_TOKENS"),
    (
        "padded answer too large",
        body(tokens_input([["a"] * 20, ["b"], ["c"], ["d"]])),
        {},
        422,
        "response_too_large",
        "padded",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "reason", "words"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_request_is_a_4xx_in_the_protocols_error_shape(
    tight: TestClient, name: str, body: bytes, headers: dict[str, str], status: int, reason: str, words: str
) -> None:
    response = tight.post(INFER, content=body, headers={**JSON, **headers})
    assert response.status_code == status, response.text
    conforms(response.json(), "error_response")
    assert set(response.json()) == {"error"} and words in response.json()["error"]
    assert response.headers["x-tagger-reason"] == (reason or "invalid_request")
    assert tight.post(INFER, content=OK, headers=JSON).status_code == 200


def test_a_header_length_of_digits_that_are_not_ascii_is_a_400(tight: TestClient) -> None:
    headers = [(b"content-type", b"application/json"), (b"inference-header-content-length", b"\xb2")]  # "²"
    response = tight.post(INFER, content=OK, headers=headers)
    assert response.status_code == 400 and "Inference-Header-Content-Length" in response.json()["error"]


def test_refusals_are_counted_under_the_route_template(tight: TestClient) -> None:
    tight.post(INFER, content=b"{}", headers=JSON)
    tight.post(INFER, content=b"x" * 9000, headers=JSON)  # refused before routing
    text = tight.get("/metrics").text
    labels = 'model="en-upos",route="/v2/models/{model}/infer"'
    assert f'tagger_requests_total{{{labels},status="400"}}' in text
    assert f'tagger_requests_total{{{labels},status="413"}}' in text
    assert 'tagger_rejections_total{reason="invalid_request"}' in text


def test_v1_errors_keep_their_shape(tight: TestClient) -> None:
    error = tight.post("/v1/models/en-upos/tag", json={"sentences": [["a", " "]]}).json()["error"]
    assert error["reason"] == "empty_token" and error["field"] == "sentences[0][1]"


def test_a_full_queue_is_a_503_with_retry_after_and_a_deadline_a_504() -> None:
    for settings, status in (({"queue_size": 1}, 503), ({"request_timeout_s": 1e-6}, 504)):
        client = started(**settings)
        try:
            response = client.post(INFER, json={"inputs": [text_input(["a", "b"])]})
            assert response.status_code == status and set(response.json()) == {"error"}
            assert status == 504 or response.headers["retry-after"] == "1"
        finally:
            client.__exit__(None, None, None)


def test_with_api_keys_v2_needs_one_but_its_probes_do_not(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("k-0123456789abcdef-oip\n", encoding="utf-8")
    client = started(api_keys_file=keys)
    try:
        for refused in (client.get("/v2"), client.get("/v2/models/en-upos"), client.post(INFER, json={})):
            assert refused.status_code == 401 and set(refused.json()) == {"error"}
        assert client.get("/v2/health/ready").status_code == 200 and client.get("/v2/health/live").status_code == 200
        bearer = {"authorization": "Bearer k-0123456789abcdef-oip"}
        assert client.post(INFER, json={"inputs": [text_input(["Hi"])]}, headers=bearer).status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_the_openapi_document_describes_the_request_with_the_servers_limits(tight: TestClient) -> None:
    schema = tight.get("/openapi.json").json()
    request = schema["components"]["schemas"]["InferenceRequest"]
    text, tokens = request["properties"]["inputs"]["items"]["oneOf"]
    assert text["properties"]["data"]["maxItems"] == 4 and text["properties"]["data"]["items"]["maxLength"] == 200
    assert tokens["properties"]["shape"]["prefixItems"][1]["maximum"] == 20
    assert request["properties"]["parameters"]["properties"]["top_k"]["maximum"] == 3
    infer = schema["paths"]["/v2/models/{model}/infer"]["post"]
    assert set(infer["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
    assert "422" not in schema["paths"]["/v2/models/{model}"]["get"]["responses"]
    jsonschema.Draft202012Validator.check_schema(request)
    valid = {"inputs": [tokens_input([["a", "b"], ["c"]], nested=True)], "parameters": {"top_k": 2}}
    jsonschema.validate(valid, request)
    assert tight.post(INFER, json=valid).status_code == 200
