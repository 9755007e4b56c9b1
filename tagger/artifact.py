"""The export folder: the contract between training and serving.

    exports/NAME/
        model.onnx      graph: words, cases, chars, lengths -> scores (B, T, K)
        vocab.json      words, characters, tags, character cap (`Vocab.to_dict`)
        crf.json        CRF transition scores (models with a CRF only)
        profile.json    the dev set's drift statistics (`tagger.profile.Profile`, its own
                        format version); optional: without it drift has no reference
        metadata.json   format version, task, schemes, decoder, config,
                        provenance, scores, and the sha256 of every file above

`load_export` refuses a folder whose format version it does not know, whose
metadata is not of the types `Metadata` declares (each field checked: a
number where a string belongs would load and then break every route that
lists the models), or whose files do not match their recorded sha256, naming
the file and the problem: a model that serves must be the model that was
checked at export. metadata.json is bounded (`MAX_METADATA_BYTES`): it is
read whenever the models folder is scanned.
"""

from __future__ import annotations

import hashlib
import json
import os
import types
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from tagger.decoding import CrfScores, Decoder
from tagger.encoding import Vocab
from tagger.profile import Profile, ProfileError
from tagger.schemes import Scheme

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.json"
METADATA_FILE = "metadata.json"
CRF_FILE = "crf.json"
PROFILE_FILE = "profile.json"
INPUT_NAMES = ("words", "cases", "chars", "lengths")
OUTPUT_NAMES = ("scores",)
# metadata.json is about 10 kB (config, scores, sha256s); read at every scan of the models folder, it is bounded
# so that one huge file cannot stall the readers (104 MB took 0.2-0.8 s a scan)
MAX_METADATA_BYTES = 1 << 20


class ArtifactError(RuntimeError):
    """An export folder that cannot be served as it is."""


@dataclass(frozen=True)
class Metadata:
    """Everything about an export except its weights and vocabularies."""

    name: str
    task: str  # "upos", "ner", ...: what the tags mean
    scheme: str | None  # tags as served: "IOB2" for span tag sets, None for plain tags
    tags: list[str]
    config: dict[str, Any]
    data: dict[str, dict[str, str]]  # split -> {"path": ..., "sha256": ...}
    scores: dict[str, dict[str, Any]]  # split -> evaluation report (ONNX Runtime)
    files: dict[str, str]  # file name -> sha256
    exported_at: str
    versions: dict[str, str]  # library versions used to train and export
    decoder: str = "softmax"  # how scores become tags: "softmax" or "crf" (transitions in crf.json)
    tag_scheme: str | None = None  # scheme of the model's own tags (vocab.json), e.g. "BIOES"
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any, compact: bool = False) -> None:
    """Indented for people to read, or `compact` (one line, no spaces: 15% smaller for a 400k-word vocabulary)."""
    text = (
        json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if compact
        else json.dumps(data, indent=1, ensure_ascii=False)
    )
    path.write_text(text + "\n", encoding="utf-8")


def _read_json(path: Path, limit: int | None = None) -> Any:
    """The JSON document in `path`: refused (naming the file) if missing, over `limit` bytes, not UTF-8 JSON,
    nested past the parser's depth, or holding NaN or Infinity (which JSON does not have)."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; an export folder needs {MODEL_FILE}, {VOCAB_FILE} and {METADATA_FILE}")
    with open(path, "rb") as f:
        raw = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(raw) > limit:
        raise ArtifactError(f"{path}: over {limit} bytes, the limit for a {path.name} (an export writes a few kB)")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError, a number too long, NaN or Infinity
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None
    except RecursionError:
        raise ArtifactError(f"{path}: not valid JSON (nested too deep)") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_metadata_json(folder: Path) -> Any:
    """metadata.json parsed, bounded by MAX_METADATA_BYTES, not yet checked (a scan of the models folder)."""
    return _read_json(folder / METADATA_FILE, MAX_METADATA_BYTES)


def read_metadata(folder: Path) -> Metadata:
    """Read and check metadata.json: the format version before anything else, then every field's type."""
    path = folder / METADATA_FILE
    data = read_metadata_json(folder)
    version = data.get("format_version") if isinstance(data, dict) else None
    if type(version) is not int or version != FORMAT_VERSION:  # true and 1.0 equal 1 in Python
        raise ArtifactError(
            f"{path}: format_version {version!r} is not supported "
            f"(this tagger reads version {FORMAT_VERSION}); re-export the model"
        )
    hints = get_type_hints(Metadata)
    known = {f.name: f for f in fields(Metadata)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ArtifactError(f"{path}: unexpected fields {unknown}; a Metadata has {sorted(known)}")
    for name, one in known.items():
        if name not in data:
            if one.default is MISSING and one.default_factory is MISSING:
                raise ArtifactError(f"{path}: field {name!r} is missing")
            continue
        problem = _mistyped(data[name], hints[name], name)
        if problem:
            raise ArtifactError(f"{path}: {problem}")
    return Metadata(**data)


def _mistyped(value: Any, hint: Any, where: str) -> str | None:
    """What is wrong with `value` as a `hint` (str, int, float, bool, None, Any, X | Y, list[X], dict[str, X])."""
    origin = get_origin(hint)
    if hint is Any:
        return None
    if origin in (Union, types.UnionType):
        problems = [_mistyped(value, one, where) for one in get_args(hint)]
        return None if None in problems else f"field {where!r} is {_shown(value)}; expected {_named(hint)}"
    if origin is list:
        if not isinstance(value, list):
            return f"field {where!r} is {_shown(value)}; expected {_named(hint)}"
        (item,) = get_args(hint)
        return next((p for i, v in enumerate(value) if (p := _mistyped(v, item, f"{where}[{i}]"))), None)
    if origin is dict:
        if not isinstance(value, dict):
            return f"field {where!r} is {_shown(value)}; expected {_named(hint)}"
        _, item = get_args(hint)
        return next((p for k, v in value.items() if (p := _mistyped(v, item, f"{where}[{k!r}]"))), None)
    expected = type(None) if hint is None else hint
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        return f"field {where!r} is {_shown(value)}; expected {_named(hint)}"
    return None


def _named(hint: Any) -> str:
    """A type as a JSON document has it."""
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_named(one) for one in get_args(hint))
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    return names.get(hint) or {list: "a list", dict: "an object"}.get(get_origin(hint), "any value")


def _shown(value: Any) -> str:
    """A value as the message shows it: its JSON kind and, if a short scalar, itself."""
    kind = {bool: "true or false", str: "a string", int: "an integer", float: "a number", list: "a list"}
    if value is None:
        return "null"
    what = kind.get(type(value), "an object")
    if isinstance(value, list | dict):
        return what if value else f"an empty {what.removeprefix('a ').removeprefix('an ')}"
    text = json.dumps(value, ensure_ascii=False)
    return f"{what} ({text})" if len(text) <= 40 else what


def verify_files(folder: Path, metadata: Metadata) -> None:
    """Check each listed file against its recorded sha256."""
    for name in (MODEL_FILE, VOCAB_FILE):
        if name not in metadata.files:
            raise ArtifactError(f"{folder / METADATA_FILE}: no sha256 recorded for {name}")
    for name, expected in metadata.files.items():
        _verify_file(folder / name, expected)


def _verify_file(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (listed in {METADATA_FILE})")
    actual = sha256_file(path)
    if actual != expected:
        hint = f"; recompute it with `tagger profile {path.parent}`" if path.name == PROFILE_FILE else ""
        raise ArtifactError(
            f"{path}: sha256 {actual} does not match {expected} recorded in "
            f"{METADATA_FILE}; the file is corrupt or was replaced after export{hint}"
        )


def load_export(folder: str | Path) -> tuple[Metadata, Vocab]:
    """Read a verified export folder's metadata and vocabularies."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such export folder")
    metadata = read_metadata(folder)
    verify_files(folder, metadata)
    try:
        vocab = Vocab.from_dict(_read_json(folder / VOCAB_FILE))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:  # of a JSON of other shapes
        raise ArtifactError(f"{folder / VOCAB_FILE}: invalid vocabulary ({err})") from None
    if list(vocab.tags) != metadata.tags:
        raise ArtifactError(f"{folder}: tags in {VOCAB_FILE} and {METADATA_FILE} differ")
    return metadata, vocab


def load_decoder(folder: str | Path, metadata: Metadata, vocab: Vocab) -> Decoder:
    """The decoder an export was verified with: its tag scheme's constraints and, with a CRF, crf.json."""
    folder = Path(folder)
    if metadata.decoder not in ("softmax", "crf"):
        raise ArtifactError(f"{folder / METADATA_FILE}: decoder {metadata.decoder!r} is not 'softmax' or 'crf'")
    named = metadata.tag_scheme or metadata.scheme
    if named not in (None, "IOB2", "BIOES"):
        raise ArtifactError(f"{folder / METADATA_FILE}: tag scheme {named!r} is not IOB2 or BIOES")
    scheme: Scheme | None = named  # type: ignore[assignment]
    crf = None
    if metadata.decoder == "crf":
        if CRF_FILE not in metadata.files:
            raise ArtifactError(f"{folder / METADATA_FILE}: decoder is 'crf' but no sha256 is recorded for {CRF_FILE}")
        try:
            crf = CrfScores.from_dict(_read_json(folder / CRF_FILE))
            return Decoder(vocab.tags, scheme, crf)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise ArtifactError(f"{folder / CRF_FILE}: invalid CRF scores ({err})") from None
    return Decoder(vocab.tags, scheme)


def load_profile(folder: str | Path, metadata: Metadata) -> Profile | None:
    """The export's verified reference profile, or None for an export made without one (drift: no reference).

    A profile.json whose sha256 is not recorded, or that was computed with another model.onnx, is refused:
    a reference that does not belong to the model would make every drift figure wrong without a sign.
    """
    folder = Path(folder)
    path = folder / PROFILE_FILE
    expected = metadata.files.get(PROFILE_FILE)
    if expected is None:
        if path.exists():
            raise ArtifactError(
                f"{path}: no sha256 recorded for it in {METADATA_FILE}; write it with `tagger profile {folder}`"
            )
        return None
    _verify_file(path, expected)
    try:
        profile = Profile.from_json(path.read_text(encoding="utf-8"))
    except (ProfileError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: {err}") from None
    if profile.source.get("model_sha256") != metadata.files.get(MODEL_FILE):
        raise ArtifactError(
            f"{path}: computed with another {MODEL_FILE} (sha256 {profile.source.get('model_sha256')}); "
            f"recompute it with `tagger profile {folder}`"
        )
    return profile


def write_profile(folder: str | Path, profile: Profile) -> None:
    """Write profile.json into an export folder and record its sha256 in metadata.json, nothing else changed.

    Each file is replaced whole (written beside, then renamed), so a reader sees the old or the new file.
    """
    folder = Path(folder)
    metadata = _read_json(folder / METADATA_FILE)
    _replace(folder / PROFILE_FILE, profile.to_json())
    metadata["files"][PROFILE_FILE] = sha256_file(folder / PROFILE_FILE)
    _replace(folder / METADATA_FILE, json.dumps(metadata, indent=1, ensure_ascii=False) + "\n")


def forget_profile(folder: str | Path) -> bool:
    """Drop profile.json's record from metadata.json (the file stays, unused); whether there was one."""
    folder = Path(folder)
    metadata = _read_json(folder / METADATA_FILE)
    if metadata["files"].pop(PROFILE_FILE, None) is None:
        return False
    _replace(folder / METADATA_FILE, json.dumps(metadata, indent=1, ensure_ascii=False) + "\n")
    return True


def _replace(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
