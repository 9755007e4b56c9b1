"""The corrections routes as a client uses them, on the shipped en-ner and a real SQLite file: the review queue
(sampled, least confident first, corrected ones gone, purged), corrections (checked against the serving model,
stored once, conflicts kept and flagged, compared with the version's own tags), the export `tagger train` reads,
the metrics, and what never leaves the database (contents in logs or labels)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tagger.readers import read_tagged
from tests.conftest import ROOT
from tests.helpers import ready_client, until

NER = "/v1/models/en-ner"
ADA = "Ada Lovelace met Charles Babbage in London."
ADA_TOKENS = ["Ada", "Lovelace", "met", "Charles", "Babbage", "in", "London", "."]
ADA_TAGS = ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    (folder / "en-ner").symlink_to(ROOT / "exports" / "en-ner")
    return folder


def client_for(models: Path, database: Path, **settings: Any) -> TestClient:
    defaults: dict[str, Any] = {"default_model": "en-ner", "inference_process": False, "warmup": False}
    return ready_client(Settings(models=models, corrections_db=str(database), **(defaults | settings)))


@pytest.fixture
def client(models: Path, tmp_path: Path) -> Iterator[TestClient]:
    client = client_for(models, tmp_path / "corrections.db", review_sample=1.0)
    yield client
    client.__exit__(None, None, None)


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def review(client: TestClient, count: int, limit: int = 20) -> list[dict[str, Any]]:
    """The review queue once the writer has written `count` items."""
    until(lambda: len(client.get(f"{NER}/review?limit={limit}").json()["items"]) >= count, seconds=10)
    items: list[dict[str, Any]] = client.get(f"{NER}/review?limit={limit}").json()["items"]
    return items


def test_served_sentences_wait_in_the_queue_least_confident_first(client: TestClient) -> None:
    texts = [ADA, "The weather in Paris was nice.", "zzq qqx went to Blorvania with Fnord."]
    assert client.post(f"{NER}/tag", json={"texts": texts}).status_code == 200
    items = review(client, 3)
    assert [i["confidence"] for i in items] == sorted(i["confidence"] for i in items)
    by_text = {i["text"]: i for i in items}
    ada = by_text[ADA]
    info = client.get(NER).json()
    assert ada["model"] == "en-ner" and ada["version"] == info["version"]
    assert ada["tokens"] == ADA_TOKENS and ada["offsets"][0] == [0, 3]
    answer = client.post(f"{NER}/tag", json={"texts": [ADA]}).json()
    assert ada["tags"] == answer["results"][0]["tags"]
    assert 0 < ada["confidence"] <= 1
    assert len(client.get(f"{NER}/review?limit=1").json()["items"]) == 1

    corrected = client.post(f"{NER}/corrections", json={"tokens": ADA_TOKENS, "tags": ADA_TAGS, "review_id": ada["id"]})
    assert corrected.status_code == 201, corrected.text
    assert ada["id"] not in {i["id"] for i in client.get(f"{NER}/review").json()["items"]}

    purged = client.delete(f"{NER}/review")
    assert purged.status_code == 200 and purged.json()["purged"] >= 3
    assert client.get(f"{NER}/review").json()["items"] == []
    assert client.get(f"{NER}/corrections?format=iob2").text.count("Lovelace") == 1  # corrections stay


def test_token_input_is_queued_without_text(client: TestClient) -> None:
    client.post(f"{NER}/tag", json={"sentences": [["Hello", "Berlin"]]})
    (item,) = review(client, 1)
    assert item["tokens"] == ["Hello", "Berlin"] and item["text"] is None and item["offsets"] is None


def test_with_no_sample_nothing_is_queued(models: Path, tmp_path: Path) -> None:
    client = client_for(models, tmp_path / "c.db")  # TAGGER_REVIEW_SAMPLE defaults to 0
    try:
        client.post(f"{NER}/tag", json={"texts": [ADA] * 5})
        time.sleep(1.5)
        assert client.get(f"{NER}/review").json()["items"] == []
        assert metric(client, 'tagger_review_sentences_total{model="en-ner",outcome="kept"}') == 0
    finally:
        client.__exit__(None, None, None)


def test_a_correction_is_stored_once_and_a_disagreeing_one_is_kept_and_flagged(client: TestClient) -> None:
    first = client.post(f"{NER}/corrections", json={"tokens": ADA_TOKENS, "tags": ADA_TAGS, "corrected_by": "x"})
    assert first.status_code == 201
    again = client.post(f"{NER}/corrections", json={"tokens": ADA_TOKENS, "tags": ADA_TAGS})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and not again.json()["created"]
    other = ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-ORG", "O"]
    disagreeing = client.post(f"{NER}/corrections", json={"tokens": ADA_TOKENS, "tags": other})
    assert disagreeing.status_code == 201 and disagreeing.json()["conflict"] is True
    everything = client.get(f"{NER}/corrections?format=iob2&conflicts=all").text
    assert everything.count("# conflict = yes") == 2
    latest = client.get(f"{NER}/corrections?format=iob2").text
    assert "London\tB-ORG" in latest and "London\tB-LOC" not in latest


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"tokens": ["Ada", "Lovelace"], "tags": ["B-PER", "I-LOC"]}, "tags[1]", ["token 1", "I-LOC", "cannot follow"]),
        ({"tokens": ["Ada", "Lovelace"], "tags": ["B-PER", "B-CITY"]}, "tags[1]", ["token 1", "B-CITY", "B-LOC"]),
        ({"tokens": ["Ada", "Lovelace"], "tags": ["B-PER"]}, "tags", ["2 tokens, 1 tags"]),
        ({"tokens": ["Ada", "Love lace "], "tags": ["B-PER", "I-PER"]}, "tokens[1]", ["token 1"]),
        (
            {"tokens": ["Ada", "x"], "tags": ["O", "O"], "text": "Ada x", "offsets": [[0, 3], [2, 5]]},
            "offsets[1]",
            ["token 1", "offsets"],
        ),
    ],
)
def test_a_correction_that_does_not_fit_the_model_is_a_422_naming_the_token(
    client: TestClient, body: dict[str, Any], field: str, words: list[str]
) -> None:
    refused = client.post(f"{NER}/corrections", json=body)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["reason"] == "invalid_correction" and error["field"] == field
    assert all(word in error["message"] for word in words), error["message"]


def test_the_sentence_length_limit_is_the_servers(models: Path, tmp_path: Path) -> None:
    client = client_for(models, tmp_path / "c.db", max_tokens=4, max_batch_tokens=4096)
    try:
        refused = client.post(f"{NER}/corrections", json={"tokens": ["a"] * 5, "tags": ["O"] * 5})
        assert refused.status_code == 422 and "at most 4" in refused.json()["error"]["message"]
    finally:
        client.__exit__(None, None, None)


def test_a_correction_of_a_review_item_gone_from_the_queue_is_kept(client: TestClient) -> None:
    body = {"tokens": ["Ada"], "tags": ["B-PER"], "review_id": 10**6}  # no such item (expired): accepted
    assert client.post(f"{NER}/corrections", json=body).status_code == 201


def test_what_people_changed_is_counted_against_the_serving_version(client: TestClient) -> None:
    version = client.get(NER).json()["version"]
    served = client.post(f"{NER}/tag", json={"sentences": [ADA_TOKENS]}).json()["results"][0]["tags"]
    wrong = ["O" if tag != "O" else tag for tag in served]  # every entity removed
    changed = sum(a != b for a, b in zip(served, wrong, strict=True))
    answer = client.post(f"{NER}/corrections", json={"tokens": ADA_TOKENS, "tags": wrong}).json()
    assert answer["version"] == version and answer["tokens_changed"] == changed > 0
    labels = f'model="en-ner",version="{version}"'
    assert metric(client, f"tagger_correction_tokens_total{{{labels}}}") == len(ADA_TOKENS)
    assert metric(client, f"tagger_correction_tokens_changed_total{{{labels}}}") == changed
    assert metric(client, f'tagger_corrections_received_total{{model="en-ner",outcome="new",version="{version}"}}') == 1
    client.post(f"{NER}/corrections", json={"tokens": ADA_TOKENS, "tags": wrong})
    assert (
        metric(client, f'tagger_corrections_received_total{{model="en-ner",outcome="duplicate",version="{version}"}}')
        == 1
    )
    assert metric(client, f"tagger_correction_tokens_total{{{labels}}}") == len(ADA_TOKENS)  # not twice
    # the database's counts, read by the corrections thread (every replica's, surviving restarts)
    until(lambda: metric(client, f"tagger_corrections_stored_tokens_changed{{{labels}}}") == changed, seconds=10)


def test_the_export_is_what_tagger_train_reads(client: TestClient, tmp_path: Path) -> None:
    client.post(f"{NER}/corrections", json={"tokens": ADA_TOKENS, "tags": ADA_TAGS, "text": ADA})
    client.post(f"{NER}/corrections", json={"tokens": ["Hi", "Bob"], "tags": ["O", "B-PER"]})
    for fmt, media in (("iob2", "text/plain"), ("conllu", "text/x-conllu")):
        exported = client.get(f"{NER}/corrections?format={fmt}")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith(media)
        assert "attachment" in exported.headers["content-disposition"]
        path = tmp_path / f"corrections.{fmt}"
        path.write_text(exported.text, encoding="utf-8")
        if fmt == "iob2":  # span tags train from the columns (CoNLL-U carries them in MISC)
            sentences = read_tagged(path, "auto")
            assert [list(s.tags) for s in sentences] == [ADA_TAGS, ["O", "B-PER"]]
        else:
            assert "NER=B-LOC" in exported.text and f"# text = {ADA}" in exported.text


def test_contents_never_reach_logs_or_metric_labels(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    secret = ["Zorblax", "Quintavelle"]
    with caplog.at_level(logging.DEBUG):
        client.post(f"{NER}/tag", json={"sentences": [secret]})
        client.post(
            f"{NER}/corrections", json={"tokens": secret, "tags": ["B-PER", "I-PER"], "corrected_by": "Evezork"}
        )
        client.post(f"{NER}/corrections", json={"tokens": secret, "tags": ["B-PER", "I-XYZ"]})  # refused
        review(client, 1)
    scraped = client.get("/metrics").text
    for word in [*secret, "Evezork"]:
        assert word not in caplog.text and word not in scraped


def test_the_routes_need_a_key_when_keys_are_on(models: Path, tmp_path: Path) -> None:
    key = "k-0123456789abcdef-corrections"
    keys = tmp_path / "keys"
    keys.write_text(key + "\n")
    client = client_for(models, tmp_path / "c.db", api_keys_file=keys)
    try:
        body = {"tokens": ["Ada"], "tags": ["B-PER"]}
        for method, path, kwargs in (
            ("POST", f"{NER}/corrections", {"json": body}),
            ("GET", f"{NER}/corrections", {}),
            ("GET", f"{NER}/review", {}),
            ("DELETE", f"{NER}/review", {}),
        ):
            assert client.request(method, path, **kwargs).status_code == 401, path
            authorized = client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs)
            assert authorized.status_code in (200, 201), (path, authorized.text)
    finally:
        client.__exit__(None, None, None)


def test_off_without_a_database(models: Path) -> None:
    client = ready_client(Settings(models=models, default_model="en-ner", inference_process=False, warmup=False))
    try:
        answer = client.get(f"{NER}/review")
        assert answer.status_code == 404 and "TAGGER_CORRECTIONS_DB" in answer.json()["error"]["message"]
        assert client.post(f"{NER}/tag", json={"texts": [ADA]}).status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_review_sample_without_a_database_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="review_sample needs corrections_db"):
        Settings(review_sample=0.1)
    with pytest.raises(ValueError, match="mysql"):
        Settings(corrections_db="mysql://u@h/db")


def test_a_405_names_every_method_of_the_path(client: TestClient) -> None:
    """Two routes share each path (GET and POST corrections, GET and DELETE review): Allow names all of them."""
    corrections = client.request("PUT", f"{NER}/corrections")
    assert corrections.status_code == 405 and corrections.headers["allow"] == "GET, POST"
    review = client.request("PATCH", f"{NER}/review")
    assert review.status_code == 405 and set(review.headers["allow"].split(", ")) >= {"GET", "DELETE"}


def test_json_integers_may_be_written_as_whole_floats(client: TestClient) -> None:
    body = {"tokens": ["Ada"], "tags": ["B-PER"], "text": "Ada", "offsets": [[0.0, 3.0]], "review_id": 5.0}
    assert client.post(f"{NER}/corrections", json=body).status_code == 201
    refused = client.post(f"{NER}/corrections", json={**body, "offsets": [[0, 2.5]]})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "offsets[0][1]"


def test_sentences_past_the_retention_leave_the_queue(models: Path, tmp_path: Path) -> None:
    client = client_for(models, tmp_path / "c.db", review_sample=1.0, review_retention_h=4 / 3600)
    try:
        client.post(f"{NER}/tag", json={"texts": [ADA]})
        review(client, 1)
        time.sleep(4.1)
        assert client.get(f"{NER}/review").json()["items"] == []
    finally:
        client.__exit__(None, None, None)
