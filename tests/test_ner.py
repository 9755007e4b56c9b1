"""Named entities end to end: a CoNLL-2003-format corpus (IOB1 tags) -> CRF model -> export -> spans over HTTP."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from cli.main import main
from service.app import create_app
from service.settings import Settings
from tagger.readers import read_columns
from tagger.runtime import load_runtime

if TYPE_CHECKING:
    from model.config import Config

pytestmark = pytest.mark.slow

NAMES = {
    "PER": ["John Smith", "Mary", "Angela Merkel", "Pedro Alvarez Gomez", "Li Wei", "Fatima", "Tom Hanks"],
    "LOC": ["Paris", "New York", "Germany", "Rio de Janeiro", "Tokyo", "Brazil", "Cape Town"],
    "ORG": ["Reuters", "United Nations", "Acme Corp", "Boeing", "Red Cross", "FIFA", "Bank of England"],
}
TEMPLATES = [
    "{PER} visited {LOC} on Monday .",
    "{PER} works for {ORG} in {LOC} .",
    "{ORG} said {PER} would travel to {LOC} .",
    "Officials from {ORG} met {PER} .",
    "Flights from {LOC} {LOC} were cancelled .",  # two adjacent spans of one type: IOB1 needs B- here
    "The weather was fine .",
]


def iob1_sentence(rng: random.Random) -> list[tuple[str, str]]:
    """Tokens with IOB1 tags: a span opens with I-X, or B-X when it directly follows another X span."""
    out: list[tuple[str, str]] = []
    previous_label = "O"
    for piece in rng.choice(TEMPLATES).split():
        if piece.startswith("{"):
            label = piece[1:-1]
            words = rng.choice(NAMES[label]).split()
            first = "B" if previous_label == label else "I"
            out += [(w, f"{first if i == 0 else 'I'}-{label}") for i, w in enumerate(words)]
            previous_label = label
        else:
            out.append((piece, "O"))
            previous_label = "O"
    return out


def write_conll2003(path: Path, n: int, seed: int) -> Path:
    """`token POS chunk NER` columns, -DOCSTART- lines between documents, as CoNLL-2003 ships."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        if i % 25 == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += [f"{token} NNP B-NP {tag}" for token, tag in iob1_sentence(rng)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ner_config(folder: Path, **train: Any) -> Config:
    """A small CRF tagger on CoNLL-2003-style files (IOB1) written into `folder`."""
    from model.config import Config, DataConfig, ModelConfig, TrainConfig

    return Config(
        name="ner",
        data=DataConfig(
            train=str(write_conll2003(folder / "train.txt", 300, 1)),
            dev=str(write_conll2003(folder / "dev.txt", 60, 2)),
            test=str(write_conll2003(folder / "test.txt", 60, 3)),
            format="conll",
            task="ner",
        ),
        model=ModelConfig(
            glove=False, crf=True, hidden=32, layers=1, char_dim=8, char_filters=16, case_dim=4, word_dim=24
        ),
        train=TrainConfig(**{"epochs": 6, "batch_size": 8, "seed": 3, **train}),
    )


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
    plain = load_checkpoint(ner_export.parent / "run" / "last.pt")[0].state_dict()  # same config, no swaps
    swapped = load_checkpoint(best.parent / "last.pt")[0].state_dict()
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
