"""metadata.json read as a typed schema (issue 30 items 2 and 9): each field of the type `Metadata` declares, the
file bounded in size, JSON's own numbers only; every refusal names the file and the field or the limit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tagger.artifact import MAX_METADATA_BYTES, METADATA_FILE, ArtifactError, load_export, read_metadata
from tests.conftest import ROOT

SHIPPED = ROOT / "exports" / "en-ner"


def folder_with(tmp_path: Path, text: str) -> Path:
    (tmp_path / METADATA_FILE).write_text(text, encoding="utf-8")
    return tmp_path


def metadata_with(tmp_path: Path, **fields: Any) -> Path:
    """A folder holding the shipped en-ner metadata.json with `fields` replaced (a field given as ... is removed)."""
    data = json.loads((SHIPPED / METADATA_FILE).read_text())
    data.update(fields)
    return folder_with(tmp_path, json.dumps({k: v for k, v in data.items() if v is not ...}))


def test_the_shipped_exports_metadata_is_of_its_declared_types() -> None:
    for folder in sorted((ROOT / "exports").iterdir()):
        if (folder / METADATA_FILE).is_file():
            assert read_metadata(folder).name == folder.name


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"task": 123}, "field 'task' is an integer (123); expected a string"),
        ({"task": {"a": 1}}, "field 'task' is an object; expected a string"),
        ({"task": None}, "field 'task' is null; expected a string"),
        ({"name": True}, "field 'name' is true or false (true); expected a string"),
        ({"scheme": ["IOB2"]}, "field 'scheme' is a list; expected a string or null"),
        ({"scores": []}, "field 'scores' is an empty list; expected an object"),
        ({"scores": {"dev": 0.9}}, "field \"scores['dev']\" is a number (0.9); expected an object"),
        ({"exported_at": 5}, "field 'exported_at' is an integer (5); expected a string"),
        ({"tags": ["O", 7]}, "field 'tags[1]' is an integer (7); expected a string"),
        ({"files": {"model.onnx": 1}}, "field \"files['model.onnx']\" is an integer (1); expected a string"),
        ({"data": {"dev": {"path": []}}}, "field \"data['dev']['path']\" is an empty list; expected a string"),
        ({"versions": "3.11"}, "field 'versions' is a string (\"3.11\"); expected an object"),
        ({"decoder": 0}, "field 'decoder' is an integer (0); expected a string"),
        ({"tag_scheme": 1}, "field 'tag_scheme' is an integer (1); expected a string or null"),
        ({"config": "big"}, "field 'config' is a string (\"big\"); expected an object"),
        ({"extra": [1]}, "field 'extra' is a list; expected an object"),
        ({"task": ...}, "field 'task' is missing"),
        ({"surprise": 1}, "unexpected fields ['surprise']"),
    ],
)
def test_a_field_of_another_type_is_refused_naming_the_field_and_the_file(
    tmp_path: Path, fields: dict[str, Any], problem: str
) -> None:
    folder = metadata_with(tmp_path, **fields)
    with pytest.raises(ArtifactError) as refused:
        read_metadata(folder)
    assert str(refused.value).startswith(f"{folder / METADATA_FILE}: {problem}"), str(refused.value)


def test_optional_fields_take_null_where_declared(tmp_path: Path) -> None:
    metadata = read_metadata(metadata_with(tmp_path, scheme=None, tag_scheme=None, extra=...))
    assert metadata.scheme is None and metadata.extra == {}


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_a_format_version_that_only_equals_one_is_refused(tmp_path: Path, version: Any) -> None:
    folder = metadata_with(tmp_path, format_version=version)
    with pytest.raises(ArtifactError, match=r"format_version .* is not supported"):
        read_metadata(folder)  # True and 1.0 equal 1 in Python: refused all the same


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_numbers_json_does_not_have_are_refused(tmp_path: Path, constant: str) -> None:
    text = (SHIPPED / METADATA_FILE).read_text().replace('"extra": {', f'"extra": {{"x": {constant}, ', 1)
    with pytest.raises(ArtifactError, match=rf"{METADATA_FILE}: not valid JSON \({re.escape(constant)} is not"):
        read_metadata(folder_with(tmp_path, text))


def test_nesting_past_the_parsers_depth_is_refused_not_raised_as_a_recursion_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"metadata.json: not valid JSON \(nested too deep\)"):
        read_metadata(folder_with(tmp_path, "[" * 100_000 + "]" * 100_000))


def test_a_metadata_json_over_the_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    raw = (SHIPPED / METADATA_FILE).read_bytes().rstrip()
    (tmp_path / METADATA_FILE).write_bytes(raw + b" " * (MAX_METADATA_BYTES + 1 - len(raw)))
    with pytest.raises(ArtifactError) as refused:
        read_metadata(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path / METADATA_FILE}: over {MAX_METADATA_BYTES} bytes, the limit for a metadata.json (an export "
        "writes a few kB)"
    )
    (tmp_path / METADATA_FILE).write_bytes(raw + b" " * (MAX_METADATA_BYTES - len(raw)))
    assert read_metadata(tmp_path).name == "en-ner"  # at the limit: read


def test_a_vocabulary_nested_too_deep_is_an_artifact_error(tmp_path: Path) -> None:
    import hashlib
    import shutil

    shutil.copytree(SHIPPED, tmp_path / "en-ner")
    folder = tmp_path / "en-ner"
    deep = "[" * 100_000 + "]" * 100_000
    (folder / "vocab.json").write_text(deep)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["files"]["vocab.json"] = hashlib.sha256(deep.encode()).hexdigest()
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match=r"vocab.json: not valid JSON \(nested too deep\)"):
        load_export(folder)
