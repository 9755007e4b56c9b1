"""`tagger profile`: adds or refreshes an export folder's reference profile, touching nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.main import main
from tagger.artifact import METADATA_FILE, PROFILE_FILE, ArtifactError, load_export, load_profile, read_metadata
from tagger.readers import read_corpus
from tests.conftest import EWT, ROOT, first_sentences, need


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped en-upos export."""
    return Path(shutil.copytree(ROOT / "exports" / "en-upos", tmp_path / "en-upos"))


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    return first_sentences(need(EWT / "en_ewt-ud-dev.conllu"), tmp_path / "dev.conllu", 40)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_profile_adds_a_profile_to_an_export_without_one(
    folder: Path, dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / PROFILE_FILE).unlink()
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    metadata["files"].pop(PROFILE_FILE)
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    before = _files(folder)
    assert main(["profile", str(folder), "--dev", str(dev)]) == 0
    assert "profile.json:" in capsys.readouterr().out
    after = _files(folder)
    assert {k for k in before if after[k] != before[k]} == {METADATA_FILE}  # model.onnx, vocab.json untouched
    profile = load_profile(folder, load_export(folder)[0])
    assert profile is not None and profile.source["data"] == str(dev)
    assert profile.sentences == 40 and profile.tokens == sum(len(s.tokens) for s in read_corpus(dev))


def test_profile_mends_a_tampered_profile(folder: Path, dev: Path) -> None:
    (folder / PROFILE_FILE).write_text("{}", encoding="utf-8")
    with pytest.raises(ArtifactError, match="sha256"):
        load_export(folder)
    assert main(["profile", str(folder), "--dev", str(dev)]) == 0
    assert load_profile(folder, load_export(folder)[0]) is not None


@pytest.mark.data
def test_profile_of_the_dev_set_named_in_the_metadata_is_the_shipped_profile(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the metadata names ../shared/data/... from the checkout
    shipped = (folder / PROFILE_FILE).read_bytes()
    (folder / PROFILE_FILE).unlink()
    assert main(["profile", str(folder)]) == 0
    assert (folder / PROFILE_FILE).read_bytes() == shipped
    assert read_metadata(folder).files == read_metadata(ROOT / "exports" / "en-upos").files
