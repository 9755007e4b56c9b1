"""Export: ONNX Runtime reproduces PyTorch, and a damaged export refuses to load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tagger.artifact import FORMAT_VERSION, METADATA_FILE, MODEL_FILE, ArtifactError, sha256_file
from tagger.readers import read_conllu
from tagger.runtime import load_runtime

pytestmark = pytest.mark.trains


def test_export_folder_describes_itself(tiny_export: Path, tiny_config) -> None:
    metadata = json.loads((tiny_export / METADATA_FILE).read_text())
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["files"][MODEL_FILE] == sha256_file(tiny_export / MODEL_FILE)
    assert metadata["data"]["train"]["sha256"] == sha256_file(Path(tiny_config.data.train))
    assert set(metadata["scores"]) == {"dev", "test"}
    assert metadata["extra"]["parity"]["tag_mismatches"] == 0
    assert metadata["extra"]["parity"]["max_abs_diff"] < 1e-4
    assert metadata["config"]["model"]["hidden"] == 24


def test_export_folder_is_readable_by_other_users(tiny_export: Path) -> None:
    # a container serves it as a non-root user; the temporary folder it was built in was 0700
    assert tiny_export.stat().st_mode & 0o777 == 0o755
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in tiny_export.iterdir())


def test_onnx_runtime_matches_pytorch_in_mixed_length_batches(tiny_run: Path, tiny_export: Path, tiny_config) -> None:
    from model.checkpoint import load_checkpoint
    from model.predict import predict_scores

    checkpoint = load_checkpoint(tiny_run)
    model, vocab = checkpoint.model, checkpoint.vocab
    sentences = read_conllu(tiny_config.data.dev)
    reference = predict_scores(model, vocab, sentences)
    runtime = load_runtime(tiny_export)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(sentences))
    for start in range(0, len(order), 13):
        chunk = order[start : start + 13]
        scores = runtime.run(runtime.vocab.encode([sentences[i].tokens for i in chunk]))
        for row, index in enumerate(chunk):
            ours = scores[row, : len(sentences[index].tokens)]
            np.testing.assert_allclose(ours, reference[index], atol=1e-4)


def test_failed_self_check_leaves_no_export(tiny_run: Path, tmp_path: Path) -> None:
    from model.export import ExportError, export

    with pytest.raises(ExportError, match="ONNX Runtime disagrees with PyTorch"):
        export(tiny_run, tmp_path / "never", tolerance=-1.0)
    assert not (tmp_path / "never").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def damaged(tiny_export: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_export, copy)
    return copy


def test_a_corrupt_model_file_is_refused_by_name(damaged: Path) -> None:
    with open(damaged / MODEL_FILE, "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ArtifactError, match=r"model\.onnx: sha256 .* does not match"):
        load_runtime(damaged)


def test_an_unknown_format_version_is_refused(damaged: Path) -> None:
    metadata = json.loads((damaged / METADATA_FILE).read_text())
    (damaged / METADATA_FILE).write_text(json.dumps({**metadata, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format_version 99 is not supported"):
        load_runtime(damaged)


def test_a_missing_file_is_named(damaged: Path) -> None:
    (damaged / MODEL_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"model\.onnx: missing"):
        load_runtime(damaged)
