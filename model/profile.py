"""An export folder's reference profile (profile.json), computed on a dev file by the exported graph itself.

Through ONNX Runtime and the served decoder (`tagger.runtime`), so the reference
is what serving will see. Torch-free: `tagger profile` adds or refreshes the
profile of any export folder, the shipped ones included, without touching
model.onnx or any other file but profile.json and its sha256 in metadata.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tagger.artifact import (
    MODEL_FILE,
    PROFILE_FILE,
    ArtifactError,
    forget_profile,
    read_metadata,
    sha256_file,
    write_profile,
)
from tagger.profile import Profile, reference_profile
from tagger.readers import Format, read_corpus
from tagger.runtime import Runtime, load_runtime


def dev_profile(runtime: Runtime, path: str | Path, sentences: Sequence[Sequence[str]]) -> Profile:
    """The profile of `sentences` (read from `path`) as `runtime` tags them, with where it came from."""
    source = {
        "data": str(path),
        "data_sha256": sha256_file(Path(path)),
        "model_sha256": runtime.metadata.files[MODEL_FILE],
    }
    return reference_profile(runtime, sentences, source)


def profile_export(folder: str | Path, dev: str | Path | None = None, fmt: Format | None = None) -> Profile:
    """Compute the profile of an export folder on `dev` (default: the dev file its metadata names) and store it.

    The file is read with the model's own data settings (format, columns) unless `fmt` is given.
    A recorded profile.json that no longer matches its sha256 is replaced, as a missing one is added.
    """
    folder = Path(folder)
    metadata = read_metadata(folder)
    expected = metadata.files.get(PROFILE_FILE)
    if expected is not None and (
        not (folder / PROFILE_FILE).is_file() or sha256_file(folder / PROFILE_FILE) != expected
    ):
        forget_profile(folder)  # else loading the folder below refuses it, and it could never be mended
    data = metadata.config.get("data", {})
    path = dev or data.get("dev") or metadata.data.get("dev", {}).get("path")
    if not path:
        raise ArtifactError(f"{folder / 'metadata.json'}: names no dev file; give one (--dev FILE)")
    runtime = load_runtime(folder)
    corpus = read_corpus(
        path,
        fmt or data.get("format", "auto"),
        tag_field=data.get("tag_field", "upos"),
        token_column=data.get("token_column", 0),
        tag_column=data.get("tag_column", -1),
    )
    profile = dev_profile(runtime, path, [s.tokens for s in corpus])
    write_profile(folder, profile)
    return profile
