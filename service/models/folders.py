"""The models folder as the repository sees it between loads: each export folder's name and recorded sha256s
(`scan`, cheap: metadata only, bounded by `tagger.artifact.MAX_METADATA_BYTES`), and its files by name, size and
modification time (`fingerprint`), which say whether a folder changed since the last look.

Every function here reads the disk: the repository calls them in a thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from service.models.served import Served
from tagger.artifact import METADATA_FILE, MODEL_FILE, ArtifactError, read_metadata_json

Files = tuple[tuple[str, int, int], ...]  # a folder's files by name, size and modification time


@dataclass(frozen=True)
class Found:
    """An export folder on disk, as the repository sees it between loads (cheap: metadata only)."""

    folder: Path
    name: str | None  # None: its metadata cannot be read
    files: dict[str, str] | None  # sha256 of each file, as its metadata says
    problem: str = ""

    def serves(self, model: Served | None) -> bool:
        """Whether `model` is served from this folder with these very files."""
        return model is not None and model.folder == self.folder and model.metadata.files == self.files


def scan(models: Path) -> list[Found]:
    """The export folders under `models` (subfolders with a metadata file), each with its name and sha256."""
    if not models.is_dir():
        return []
    found = []
    for folder in sorted(p for p in models.iterdir() if (p / METADATA_FILE).is_file()):
        try:
            metadata = read_metadata_json(folder)  # bounded in size, depth and numbers
            files = {str(k): str(v) for k, v in metadata["files"].items()}
            found.append(Found(folder, str(metadata["name"]), files) if MODEL_FILE in files else unreadable(folder))
        except Exception as err:  # whatever is in it: not JSON, too large, or "files" not an object
            why = str(err) if isinstance(err, ArtifactError) else repr(err)
            found.append(Found(folder, None, None, f"cannot read its {METADATA_FILE}: {why}"))
    return found


def look(models: Path) -> tuple[list[Found], dict[Path, Files]]:
    """The export folders and each one's files now: what a poll compares with the last."""
    found = scan(models)
    return found, {f.folder: fingerprint(f.folder) for f in found}


def unreadable(folder: Path) -> Found:
    return Found(folder, None, None, f"its {METADATA_FILE} lists no {MODEL_FILE}")


def fingerprint(folder: Path) -> Files:
    """The folder's files by name, size and modification time: what says a failed folder has changed."""
    with contextlib.suppress(OSError):
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))
    return ()


def still_there(models: Path, folder: Path, name: str) -> bool:
    """Whether a model's folder, found gone by a poll, is back: `folder` exists, or another folder names `name`."""
    return folder.exists() or any(f.name == name for f in scan(models))
