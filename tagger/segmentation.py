"""Raw text -> sentences (character offsets), by a character-level BiLSTM exported to ONNX; torch-free.

A segmenter folder (`model.segmenter_export` writes it):

    exports/segmenter-NAME/
        model.onnx       graph: chars, classes (B, T) int64, lengths (B,) -> scores (B, T, K)
        chars.json       the character inventory ("<pad>", "<unk>", then by frequency)
        segmenter.json   format version, labels, window sizes, config, provenance, scores,
                         and the sha256 of the two files above

It has no `metadata.json` on purpose: the service serves every folder of
exports/ that has one as a tagging model, and a segmenter is not one.

Segmenting: blank lines (and U+2029, form feeds) are hard boundaries, so each
block of text between them is labelled on its own; a long block is read in
windows of `window` characters with `context` more on each side. A sentence
ends at every character labelled S, and at the end of its block. With
`max_tokens`, a sentence with more tokens (by `tagger.tokenizer`) is cut at
its likeliest sentence end among its tokens, never after `max_tokens` tokens.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from tagger.artifact import ArtifactError, sha256_file
from tagger.tokenizer import tokenize

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
CHARS_FILE = "chars.json"
SEGMENTER_FILE = "segmenter.json"
INPUT_NAMES = ("chars", "classes", "lengths")
OUTPUT_NAMES = ("scores",)
LABELS = ("O", "S", "T")  # other, sentence end, token end
SENTENCE_END = LABELS.index("S")
PAD, UNK = 0, 1
PAD_CHAR, UNK_CHAR = "<pad>", "<unk>"
# What a character is, for characters the inventory lacks (and a hint for those it has); 0 is padding.
CHAR_CLASSES = ("<pad>", "space", "newline", "lower", "upper", "digit", "stop", "quote", "bracket", "punct", "other")
_STOPS, _QUOTES, _BRACKETS = ".!?…。", "'\"`’‘“”«»", "()[]{}<>"
_HARD_BREAK = re.compile(r"\n[^\S\n]*\n\s*|[\u2029\f]\s*")
BATCH_SIZE = 64


def char_class(ch: str) -> int:
    """The class of one character, an index into CHAR_CLASSES (never 0)."""
    if ch in "\n\r\u2028\x85\v":
        return 2
    if ch.isspace():
        return 1
    if ch.islower():
        return 3
    if ch.isupper() or ch.istitle():
        return 4
    if ch.isdigit():
        return 5
    for index, group in ((6, _STOPS), (7, _QUOTES), (8, _BRACKETS)):
        if ch in group:
            return index
    return 10 if ch.isalpha() else 9


def encode_chars(text: str, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Character ids and classes of `text`, (n,) int64 each: one Python call per distinct character.

    encode_chars("aa.", {"a": 2}) -> ([2, 2, 1], [3, 3, 6]).
    """
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    distinct, inverse = np.unique(codes, return_inverse=True)
    chars = [chr(c) for c in distinct]
    ids = np.array([index.get(c, UNK) for c in chars], dtype=np.int64)
    classes = np.array([char_class(c) for c in chars], dtype=np.int64)
    return ids[inverse], classes[inverse]


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text: `text[start:end]` (no surrounding whitespace), in paragraph `paragraph` (from 0)."""

    start: int
    end: int
    paragraph: int


@dataclass(frozen=True)
class Manifest:
    """What segmenter.json says: everything about a segmenter but its weights and characters."""

    name: str
    labels: list[str]
    window: int
    context: int
    files: dict[str, str]  # file name -> sha256
    config: dict[str, Any]
    data: dict[str, dict[str, str]]
    scores: dict[str, Any]
    exported_at: str
    versions: dict[str, str]
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)


def paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each block of `text` between hard breaks, without surrounding whitespace."""
    at = 0
    for match in [*_HARD_BREAK.finditer(text), None]:
        stop = match.start() if match else len(text)
        block = text[at:stop]
        stripped = block.strip()
        if stripped:
            start = at + len(block) - len(block.lstrip())
            yield start, start + len(stripped)
        at = match.end() if match else len(text)


@dataclass(frozen=True)
class Segmenter:
    """A loaded segmenter folder: call `segment`."""

    manifest: Manifest
    index: dict[str, int]  # character -> id
    session: ort.InferenceSession

    def scores(self, text: str) -> np.ndarray:
        """(len(text), K) float32 label scores per character (LABELS order); 0 outside paragraphs."""
        out = np.zeros((len(text), len(LABELS)), dtype=np.float32)
        pieces = list(self._windows(text))
        if not pieces:
            return out
        ids, classes = encode_chars(text, self.index)
        order = sorted(range(len(pieces)), key=lambda i: pieces[i][1] - pieces[i][0])
        for first in range(0, len(order), BATCH_SIZE):
            chosen = [pieces[i] for i in order[first : first + BATCH_SIZE]]
            lengths = np.array([b - a for a, b, _, _ in chosen], dtype=np.int64)
            batch_ids = np.zeros((len(chosen), int(lengths.max())), dtype=np.int64)
            batch_classes = np.zeros_like(batch_ids)
            for row, (a, b, _, _) in enumerate(chosen):
                batch_ids[row, : b - a], batch_classes[row, : b - a] = ids[a:b], classes[a:b]
            (scores,) = self.session.run(
                list(OUTPUT_NAMES), {"chars": batch_ids, "classes": batch_classes, "lengths": lengths}
            )  # (B, T, K)
            for row, (a, _, keep_a, keep_b) in enumerate(chosen):
                out[keep_a:keep_b] = scores[row, keep_a - a : keep_b - a]
        return out

    def sentence_end_scores(self, text: str) -> np.ndarray:
        """(len(text),) float32: per character, how much more likely S is than the likeliest other label
        (above 0: a sentence ends there); -inf outside paragraphs."""
        return _sentence_end_margin(text, self.scores(text))

    def tokens(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each surface token the model finds (`don't` whole): a token ends at a character
        labelled T or S, or before whitespace. For comparison with `tagger.tokenizer`, which serves."""
        ends = self.scores(text).argmax(axis=1) != LABELS.index("O")
        out = []
        for start, end in paragraphs(text):
            at = None
            for i in range(start, end):
                if text[i].isspace():
                    if at is not None:
                        out.append((at, i))
                    at = None
                    continue
                at = i if at is None else at
                if ends[i]:
                    out.append((at, i + 1))
                    at = None
            if at is not None:
                out.append((at, end))
        return out

    def _windows(self, text: str) -> Iterator[tuple[int, int, int, int]]:
        """(read from, read to, keep from, keep to) for each window of each paragraph."""
        size, context = self.manifest.window, self.manifest.context
        for start, end in paragraphs(text):
            if end - start <= size + 2 * context:
                yield start, end, start, end
                continue
            for keep in range(start, end, size):
                yield max(start, keep - context), min(end, keep + size + context), keep, min(end, keep + size)

    def segment(self, text: str, max_tokens: int | None = None) -> list[Sentence]:
        """Sentences of `text` in order, by character offsets; "" or only whitespace gives [].

        >>> [text[s.start:s.end] for s in segmenter.segment(text)]  # doctest: +SKIP
        ['The cat sat on the mat.', 'It was happy.']
        """
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        margin = _sentence_end_margin(text, self.scores(text))
        sentences = []
        for number, (start, end) in enumerate(paragraphs(text)):
            ends = [int(e) + 1 for e in np.flatnonzero(margin[start:end] > 0) + start]
            for a, b in _spans(text, start, [*ends, end]):
                if max_tokens is not None and b - a > max_tokens:
                    sentences += [Sentence(x, y, number) for x, y in _cut(text, a, b, margin, max_tokens)]
                else:
                    sentences.append(Sentence(a, b, number))
        return sentences


def _sentence_end_margin(text: str, scores: np.ndarray) -> np.ndarray:
    """(len(text),) S score minus the best other label's: above 0 where a sentence ends; -inf outside paragraphs."""
    margin = np.full(len(text), -np.inf, dtype=np.float32)
    others = np.delete(scores, SENTENCE_END, axis=1).max(axis=1)  # (n,)
    for start, end in paragraphs(text):
        margin[start:end] = scores[start:end, SENTENCE_END] - others[start:end]
    return margin


def _spans(text: str, start: int, ends: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Stripped, non-empty (start, end) spans from `start` to each end in turn."""
    for end in ends:
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            a = start + len(piece) - len(piece.lstrip())
            yield a, a + len(stripped)
        start = max(start, end)


def _cut(text: str, start: int, end: int, margin: np.ndarray, max_tokens: int) -> Iterator[tuple[int, int]]:
    """Split text[start:end] into pieces of at most `max_tokens` tokens, each cut after the token (in the
    second half of the allowed ones) whose last character the model finds likeliest to end a sentence."""
    tokens = tokenize(text[start:end])
    first = 0
    while len(tokens) - first > max_tokens:
        candidates = range(first + max(max_tokens // 2, 1) - 1, first + max_tokens)
        best = max(candidates, key=lambda i: (margin[start + tokens[i].end - 1], i))
        yield start + tokens[first].start, start + tokens[best].end
        first = best + 1
    if first < len(tokens):
        yield start + tokens[first].start, start + tokens[-1].end


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; a segmenter folder needs {MODEL_FILE}, {CHARS_FILE}, {SEGMENTER_FILE}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None


def read_manifest(folder: Path) -> Manifest:
    """segmenter.json, its format version checked first and each listed file against its sha256."""
    data = _read_json(folder / SEGMENTER_FILE)
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{folder / SEGMENTER_FILE}: format_version {version!r} is not supported "
            f"(this tagger reads segmenter version {FORMAT_VERSION}); re-export the segmenter"
        )
    try:
        manifest = Manifest(**data)
    except TypeError as err:
        raise ArtifactError(f"{folder / SEGMENTER_FILE}: unexpected fields ({err})") from None
    if tuple(manifest.labels) != LABELS:
        raise ArtifactError(f"{folder / SEGMENTER_FILE}: labels {manifest.labels}, expected {list(LABELS)}")
    for name in (MODEL_FILE, CHARS_FILE):
        expected = manifest.files.get(name)
        if expected is None:
            raise ArtifactError(f"{folder / SEGMENTER_FILE}: no sha256 recorded for {name}")
        actual = sha256_file(folder / name) if (folder / name).is_file() else "missing"
        if actual != expected:
            raise ArtifactError(
                f"{folder / name}: sha256 {actual} does not match {expected} recorded in {SEGMENTER_FILE}; "
                "the file is corrupt or was replaced after export"
            )
    return manifest


def load_segmenter(
    folder: str | Path, intra_threads: int = 1, window: int | None = None, context: int | None = None
) -> Segmenter:
    """Load and verify a segmenter folder (format version, sha256 of each file, graph signature);
    `window` and `context` override the folder's own (shorter windows: more of them run side by side)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such segmenter folder")
    manifest = read_manifest(folder)
    window = manifest.window if window is None else window
    context = manifest.context if context is None else context
    if window < 1 or context < 0:
        raise ValueError(f"window must be at least 1 and context at least 0, got {window} and {context}")
    manifest = dataclasses.replace(manifest, window=window, context=context)
    chars = _read_json(folder / CHARS_FILE)
    if not isinstance(chars, list) or chars[:2] != [PAD_CHAR, UNK_CHAR]:
        raise ArtifactError(f"{folder / CHARS_FILE}: expected a list starting with {PAD_CHAR!r}, {UNK_CHAR!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own exception types for unreadable graphs
        raise ArtifactError(f"{folder / MODEL_FILE}: ONNX Runtime cannot load it ({err})") from None
    inputs = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    if inputs != INPUT_NAMES or outputs != OUTPUT_NAMES:
        raise ArtifactError(
            f"{folder / MODEL_FILE}: graph takes {inputs} -> {outputs}, expected {INPUT_NAMES} -> {OUTPUT_NAMES}"
        )
    return Segmenter(manifest, {c: i for i, c in enumerate(chars)}, session)
