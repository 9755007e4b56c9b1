"""The shipped models: they load, verify, fit the size budget and meet their targets on real test data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.config import Config
from tagger.artifact import METADATA_FILE
from tagger.evaluation import Report, evaluate
from tagger.readers import read_conllu
from tagger.runtime import load_runtime
from tests.conftest import EWT, ROOT, need

pytestmark = pytest.mark.data
EN_UPOS = ROOT / "exports" / "en-upos"


def folder_megabytes(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.iterdir()) / 1e6


def test_en_upos_is_small_enough_and_self_describing() -> None:
    runtime = load_runtime(EN_UPOS)  # verifies format version and sha256s
    assert folder_megabytes(EN_UPOS) <= 30.0
    metadata = runtime.metadata
    assert metadata.task == "upos" and len(metadata.tags) == 17 and metadata.scheme is None
    assert metadata.config["model"]["glove"] is True
    assert metadata.extra["parity"]["tag_mismatches"] == 0


def test_en_upos_meets_its_accuracy_target_on_ewt_test() -> None:
    sentences = read_conllu(need(EWT / "en_ewt-ud-test.conllu"))
    runtime = load_runtime(EN_UPOS)
    predicted = [d.tags for d in runtime.tag_sentences([s.tokens for s in sentences])]
    report = evaluate([list(s.tags) for s in sentences], predicted)
    assert report.tokens == 25_094
    assert report.accuracy >= 0.955
    assert report.accuracy == pytest.approx(runtime.metadata.scores["test"]["accuracy"], abs=1e-9)


EN_NER = ROOT / "exports" / "en-ner"
UNER = ROOT.parent / "shared" / "data" / "uner-english-ewt"
WIKIANN = ROOT.parent / "shared" / "data" / "wikiann-en"


def test_en_ner_is_small_enough_and_decodes_with_its_crf() -> None:
    runtime = load_runtime(EN_NER)  # verifies format version and the sha256 of every file, crf.json included
    assert folder_megabytes(EN_NER) <= 30.0
    metadata = runtime.metadata
    assert metadata.task == "ner" and metadata.decoder == "crf"
    assert metadata.scheme == "IOB2" and metadata.tag_scheme == "BIOES"
    assert sorted(runtime.decoder.output_tags) == ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]
    assert metadata.extra["parity"] == {**metadata.extra["parity"], "sentences": 2001, "tag_mismatches": 0}
    assert "ensemble" not in metadata.extra  # one network's CPU


def span_report(path: Path) -> Report:
    """en-ner on a test file as `tagger evaluate` reads it: no format flags."""
    from tagger.readers import read_tagged

    sentences = read_tagged(need(path))
    runtime = load_runtime(EN_NER)
    predicted = [d.tags for d in runtime.tag_sentences([s.tokens for s in sentences])]
    report = evaluate([list(s.tags) for s in sentences], predicted)
    assert report.spans is not None
    return report


def test_en_ner_reads_running_web_text() -> None:
    report = span_report(UNER / "en_ewt-ud-test.iob2")
    assert report.spans is not None
    assert report.spans.f1 == pytest.approx(load_runtime(EN_NER).metadata.scores["test"]["f1"], abs=1e-9)
    # measured 0.7529 (P 0.7654, R 0.7408); the issue asks >= 0.75 with precision and recall >= 0.70
    assert report.spans.f1 >= 0.75 and report.spans.precision >= 0.70 and report.spans.recall >= 0.70


def test_en_ner_still_reads_wikipedia_style_text() -> None:
    report = span_report(WIKIANN / "test.conll")
    assert report.spans is not None
    assert report.spans.f1 >= 0.78  # measured 0.8015


@pytest.mark.parametrize("name", ["en-upos", "en-ner"])
def test_each_shipped_model_is_reproduced_by_the_config_it_names(name: str) -> None:
    # the export records the resolved config it was trained with, named for its file in configs/;
    # `tagger train --config configs/THAT.json` must resolve to the same one, or the README's
    # reproduction command trains something else
    # (fields added since the export was made resolve to their defaults, which mean "as before")
    # (an ensemble records each member's config; its `config` is the first member's)
    metadata = json.loads((ROOT / "exports" / name / METADATA_FILE).read_text())
    recorded = [m["config"] for m in metadata["extra"].get("ensemble", [])] or [metadata["config"]]
    assert recorded[0] == metadata["config"]
    for config in recorded:
        assert Config.load(ROOT / "configs" / f"{config['name']}.json") == Config.from_dict(config)


@pytest.mark.parametrize("name", ["en-upos", "en-ner"])
def test_each_shipped_model_is_served_under_its_folder_name(name: str) -> None:
    assert load_runtime(ROOT / "exports" / name).metadata.name == name  # the name in every route


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (ROOT / "configs").rglob("*.json") if "segmenter" not in p.parts),
    ids=lambda p: str(p.relative_to(ROOT / "configs")),
)
def test_every_config_loads_and_is_named_for_its_file(path: Path) -> None:
    assert Config.load(path).name == path.stem


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "segmenter").glob("*.json")), ids=lambda p: p.name)
def test_every_segmenter_config_loads(path: Path) -> None:
    from model.segmenter import SegmenterConfig

    assert SegmenterConfig.load(path).name.startswith("segmenter")


def test_the_en_ner_model_card_is_served_with_its_model() -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(warmup=False, inference_process=False))
    with TestClient(app) as client:
        card = client.get("/v1/models/en-ner").json()["card"]
        assert card.startswith("# en-ner") and "Known failures" in card and "UNER" in card
        listed = client.get("/v1/models").json()["models"]
        assert all(model["card"] is None for model in listed)  # the list stays small


def test_the_readme_examples_are_what_the_shipped_models_answer() -> None:
    import re

    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = [json.loads(block) for block in re.findall(r"```json\n(\{\"model\".*?)\n```", readme, re.S)]
    assert len(shown) == 2
    with TestClient(create_app(Settings(warmup=False, inference_process=False))) as client:
        upos = client.post("/v1/tag", json={"texts": ["I don't like green eggs."], "scores": True}).json()
        ner = client.post(
            "/v1/models/en-ner/tag", json={"texts": ["Angela Merkel met the CEO of Siemens in Munich."]}
        ).json()
    assert shown == [upos, ner]
