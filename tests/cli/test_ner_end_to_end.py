"""Named entities end to end: a CoNLL-2003-format corpus (IOB1 tags) -> CRF model -> export -> spans over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from cli.main import main
from service.app import create_app
from service.settings import Settings
from tagger.readers import read_columns
from tagger.runtime import load_runtime
from tests.synthetic import NAMES, ner_config

if TYPE_CHECKING:
    pass

pytestmark = [pytest.mark.trains, pytest.mark.server]


@pytest.fixture(scope="module")
def ner_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.export import export
    from model.train import train

    folder = tmp_path_factory.mktemp("conll2003")
    run = folder / "run"
    train(ner_config(folder), run)
    export(run, folder / "ner")
    return folder / "ner"


def test_mention_replacement_trains_a_tagger_on_iob1_files(ner_export: Path, tmp_path: Path) -> None:
    import torch

    from model.checkpoint import load_checkpoint
    from model.train import train

    best = train(ner_config(tmp_path, mention_replace=0.5), tmp_path / "run")
    scores = json.loads((best.parent / "scores.json").read_text())
    assert scores["test"]["f1"] >= 0.8  # swapped names of the right type still teach the templates
    plain = load_checkpoint(ner_export.parent / "run" / "last.pt").model.state_dict()  # same config, no swaps
    swapped = load_checkpoint(best.parent / "last.pt").model.state_dict()
    assert not torch.equal(plain["out.weight"], swapped["out.weight"])  # the swaps changed what was learned


def test_the_export_records_its_crf_and_schemes(ner_export: Path) -> None:
    runtime = load_runtime(ner_export)
    metadata = runtime.metadata
    assert metadata.decoder == "crf" and (ner_export / "crf.json").is_file()
    assert metadata.tag_scheme == "BIOES" and metadata.scheme == "IOB2"
    assert "crf.json" in metadata.files
    assert set(runtime.vocab.tags) == {f"{p}-{t}" for p in "BIES" for t in NAMES} | {"O"}
    assert metadata.extra["parity"]["tag_mismatches"] == 0


def test_evaluate_reports_spans_per_type_on_iob1_gold(ner_export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test_file = ner_export.parent / "test.txt"
    assert main(["evaluate", str(ner_export), str(test_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"precision", "recall", "f1", "per_type"} <= set(report)
    assert set(report["per_type"]) == set(NAMES)
    assert report["f1"] >= 0.9  # templates and names repeat: a working CRF tagger learns them


def test_predict_writes_iob2_tags(ner_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "tagged.conll"
    assert main(["predict", str(ner_export), str(ner_export.parent / "dev.txt"), "--output", str(out)]) == 0
    tags = {tag for s in read_columns(out) for tag in s.tags}
    assert tags <= {"O"} | {f"{p}-{t}" for p in "BI" for t in NAMES}


@pytest.fixture(scope="module")
def client(ner_export: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models=ner_export.parent, default_model="ner"))) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def test_served_spans_carry_token_and_character_offsets(client: TestClient) -> None:
    text = "Angela Merkel works for Acme Corp in Tokyo."
    response = client.post("/v1/tag", json={"texts": [text], "scores": True, "top_k": 2})
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["tags"] == ["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O"]
    spans = [(s["label"], s["start"], s["end"], s["text"]) for s in result["spans"]]
    assert spans == [("PER", 0, 2, "Angela Merkel"), ("ORG", 4, 6, "Acme Corp"), ("LOC", 7, 8, "Tokyo")]
    for span in result["spans"]:
        assert text[span["start_char"] : span["end_char"]] == span["text"]
        assert 0.0 < span["score"] <= 1.0
    assert all(0.0 < p <= 1.0 for p in result["scores"])
    assert {t["tag"] for best in result["top_k"] for t in best} <= {"O"} | {f"{p}-{t}" for p in "BI" for t in NAMES}


def test_spans_of_pretokenized_input_have_no_character_offsets(client: TestClient) -> None:
    response = client.post("/v1/tag", json={"sentences": [["Mary", "visited", "New", "York", "."]]})
    (span, *_) = response.json()["results"][0]["spans"]
    assert span["text"] == "Mary" and "start_char" not in span


def test_the_model_description_names_its_schemes(client: TestClient) -> None:
    info = client.get("/v1/models/ner").json()
    assert info["scheme"] == "IOB2" and info["task"] == "ner"


def test_model_info_lists_the_tags_answers_carry_and_the_span_labels(ner_export: Path) -> None:
    settings = Settings(models=ner_export.parent, default_model="ner", warmup=False, inference_process=False)
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/models/ner").json()
    assert info["scheme"] == "IOB2" and info["model_scheme"] == "BIOES"
    assert sorted(info["tags"]) == sorted({"O"} | {f"{p}-{t}" for p in "BI" for t in NAMES})  # no E-/S- tags
    assert info["span_labels"] == sorted(NAMES)
