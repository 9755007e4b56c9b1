"""The shipped models: they load, verify, fit the size budget and meet their targets on real test data."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.runtime import load_runtime
from tagger.evaluation import evaluate
from tagger.readers import read_conllu

from .conftest import EWT, ROOT, need

pytestmark = pytest.mark.slow
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
