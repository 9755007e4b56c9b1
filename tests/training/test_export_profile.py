"""`tagger export` writes the dev set's reference profile, computed by the exported graph, into the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagger.artifact import MODEL_FILE, PROFILE_FILE, load_export, load_profile, sha256_file
from tagger.profile import Profiler
from tagger.runtime import load_runtime


@pytest.mark.trains
def test_an_export_carries_the_profile_of_its_dev_set(tiny_export: Path, tiny_config) -> None:  # type: ignore[no-untyped-def]
    metadata, _ = load_export(tiny_export)  # verifies profile.json's sha256 with the rest
    assert metadata.files[PROFILE_FILE] == sha256_file(tiny_export / PROFILE_FILE)
    profile = load_profile(tiny_export, metadata)
    assert profile is not None
    assert profile.source == {
        "data": tiny_config.data.dev,
        "data_sha256": sha256_file(Path(tiny_config.data.dev)),
        "model_sha256": metadata.files[MODEL_FILE],
    }
    assert (profile.tokens, profile.sentences) == (
        metadata.extra["parity"]["tokens"],
        metadata.extra["parity"]["sentences"],
    )
    # what the service's counters would count on the same sentences through ONNX Runtime
    runtime = load_runtime(tiny_export)
    from model.data import read_split

    sentences = [s.tokens for s in read_split(tiny_config.data, tiny_config.data.dev)]
    profiler = Profiler(runtime.vocab, runtime.decoder)
    counts = profiler.counts()
    for start in range(0, len(sentences), 7):  # other batches than the export's: same counts
        batch = sentences[start : start + 7]
        profiler.count(counts, batch, runtime.tag(runtime.vocab.encode(batch)))
    assert counts.profile(profile.source) == profile
