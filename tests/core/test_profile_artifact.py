"""profile.json in the export contract: verified like every file, optional, and present in the shipped models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tagger.artifact import (
    METADATA_FILE,
    MODEL_FILE,
    PROFILE_FILE,
    ArtifactError,
    load_export,
    load_profile,
    read_metadata,
    sha256_file,
    write_profile,
)
from tagger.profile import CASES, LOW_CONFIDENCE, SCRIPTS
from tests.conftest import ROOT

SHIPPED = ("en-ner", "en-upos")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped en-upos export, profile included."""
    return Path(shutil.copytree(ROOT / "exports" / "en-upos", tmp_path / "en-upos"))


def _edit_metadata(folder: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    data = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    edit(data)
    (folder / METADATA_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")


def test_a_tampered_profile_is_refused_with_the_file_and_the_fix(folder: Path) -> None:
    data = json.loads((folder / PROFILE_FILE).read_text(encoding="utf-8"))
    data["unknown_rate"] = 0.5
    (folder / PROFILE_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"profile\.json: sha256 .* does not match .*tagger profile"):
        load_export(folder)
    with pytest.raises(ArtifactError, match=r"profile\.json: sha256"):
        load_profile(folder, read_metadata(folder))


def test_an_export_without_a_profile_loads_and_has_no_reference(folder: Path) -> None:
    (folder / PROFILE_FILE).unlink()
    _edit_metadata(folder, lambda m: m["files"].pop(PROFILE_FILE))
    metadata, _ = load_export(folder)
    assert load_profile(folder, metadata) is None


def test_a_listed_profile_that_is_missing_is_refused(folder: Path) -> None:
    (folder / PROFILE_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"profile\.json: missing \(listed in metadata\.json\)"):
        load_export(folder)


def test_a_profile_without_a_recorded_sha256_is_not_used(folder: Path) -> None:
    _edit_metadata(folder, lambda m: m["files"].pop(PROFILE_FILE))
    metadata, _ = load_export(folder)  # the model itself still loads
    with pytest.raises(ArtifactError, match=r"no sha256 recorded for it in metadata\.json; write it with"):
        load_profile(folder, metadata)


def test_a_profile_of_another_model_is_refused(folder: Path) -> None:
    profile = load_profile(folder, read_metadata(folder))
    assert profile is not None
    stale = type(profile)(**{**profile.__dict__, "source": {**profile.source, "model_sha256": "0" * 64}})
    write_profile(folder, stale)
    with pytest.raises(ArtifactError, match=r"computed with another model\.onnx"):
        load_profile(folder, read_metadata(folder))


def test_a_profile_of_an_unknown_version_is_refused_by_the_loader(folder: Path) -> None:
    text = (folder / PROFILE_FILE).read_text(encoding="utf-8").replace('"format_version": 1', '"format_version": 9')
    (folder / PROFILE_FILE).write_text(text, encoding="utf-8")
    _edit_metadata(folder, lambda m: m["files"].update({PROFILE_FILE: sha256_file(folder / PROFILE_FILE)}))
    with pytest.raises(ArtifactError, match=r"profile\.json: profile format_version 9 is not supported"):
        load_profile(folder, read_metadata(folder))


def test_writing_a_profile_changes_only_its_file_and_its_checksum(folder: Path) -> None:
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    metadata = json.loads(before[METADATA_FILE])
    profile = load_profile(folder, read_metadata(folder))
    assert profile is not None
    write_profile(folder, type(profile)(**{**profile.__dict__, "tokens": 1}))
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(after) == sorted(before)
    assert {k for k in after if after[k] != before[k]} == {PROFILE_FILE, METADATA_FILE}
    metadata["files"][PROFILE_FILE] = sha256_file(folder / PROFILE_FILE)
    assert json.loads(after[METADATA_FILE]) == metadata
    assert load_profile(folder, read_metadata(folder)).tokens == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_profiles_load_with_sane_figures(name: str) -> None:
    folder = ROOT / "exports" / name
    metadata, vocab = load_export(folder)
    profile = load_profile(folder, metadata)
    assert profile is not None, f"{folder} has no {PROFILE_FILE}"
    assert profile.source["model_sha256"] == metadata.files[MODEL_FILE] == sha256_file(folder / MODEL_FILE)
    assert profile.tokens == metadata.extra["parity"]["tokens"]  # the whole dev set
    assert profile.sentences == metadata.extra["parity"]["sentences"] == sum(profile.sentence_lengths.counts)
    assert sum(profile.probability.counts) == profile.tokens
    assert 0 < profile.unknown_rate < 0.1
    assert 0 < profile.low_confidence_share < 0.2 and profile.low_confidence_threshold == LOW_CONFIDENCE
    for shares, names in ((profile.case_mix, CASES), (profile.script_mix, SCRIPTS)):
        assert list(shares) == list(names) and sum(shares.values()) == pytest.approx(1.0)
    assert sum(profile.tag_shares.values()) == pytest.approx(1.0)
    assert set(profile.tag_shares) == {t if t[:2] not in ("S-", "E-") else "x" for t in vocab.tags} - {"x"}
    assert profile.script_mix["Latin"] > 0.8
    assert bool(profile.spans_per_100_tokens) == (metadata.scheme is not None)
