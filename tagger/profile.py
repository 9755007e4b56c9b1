"""Drift statistics, defined once: what the exporter records on the dev set and the service counts live.

Per token: its case class, its Unicode script class, whether the model's word
vocabulary knows it, the chosen tag and that tag's probability (`Decoded.probs`:
CRF marginals for CRF models, softmax otherwise). Per sentence: its length and
its spans by label. `Counts` holds only integer counts and fixed histogram
buckets, so counts from many batches, processes or replicas add up; `Profile`
is what a set of counts says as shares and rates, the reference stored in an
export folder as profile.json.

Cost, the concession: a token's case and script need its string, so they are
computed once per distinct token and remembered (`TokenClasses`, bounded like
the encoder's cache); everything per batch after that is a few numpy calls.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from tagger.decoding import Decoded, Decoder
from tagger.encoding import UNK, Vocab

if TYPE_CHECKING:
    from tagger.runtime import Runtime

PROFILE_VERSION = 1
CASES = ("lower", "upper", "title", "other")
SCRIPTS: tuple[str, ...] = ("Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Devanagari", "Han", "Kana", "Hangul")
SCRIPTS += ("Thai", "Common", "Mixed", "Other")
# Histograms are Prometheus-style: bucket i counts values <= BOUNDS[i] (and above the bound before it),
# the last bucket everything above the last bound.
LENGTH_BOUNDS = (1, 2, 5, 10, 15, 20, 30, 40, 60, 100)
PROBABILITY_BOUNDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
LOW_CONFIDENCE = 0.8  # a chosen tag with probability <= this is a low-confidence token (a bucket bound)
CACHE_SIZE = 50_000  # distinct tokens whose classes are remembered (cleared when full)

_SCRIPT_WORDS = {"LATIN": 0, "CYRILLIC": 1, "GREEK": 2, "ARABIC": 3, "HEBREW": 4, "DEVANAGARI": 5, "CJK": 6}
_SCRIPT_WORDS |= {"HIRAGANA": 7, "KATAKANA": 7, "KATAKANA-HIRAGANA": 7, "HANGUL": 8, "THAI": 9}
_COMMON, _MIXED, _OTHER = SCRIPTS.index("Common"), SCRIPTS.index("Mixed"), SCRIPTS.index("Other")
N_CODES = 2 * len(CASES) * len(SCRIPTS)  # a token's code: (unknown, case, script) packed into one int


class ProfileError(ValueError):
    """A profile that this tagger cannot read or compare."""


def case_class(token: str) -> int:
    """Index into CASES: lower ("paris", "e-mail", "1st"), upper ("USA", "U.S."), title ("Paris", "I", "3M"),
    other (mixed like "iPhone" and "McDonald", or no cased letter: "1984", ",", "🙂", "")."""
    if token.islower():
        return 0
    uppers = sum(ch.isupper() for ch in token)
    if token.isupper():
        return 1 if uppers > 1 else 2
    if uppers == 1:
        first = next(ch for ch in token if ch.isupper() or ch.islower())
        if first.isupper():
            return 2
    return 3


def _char_script(ch: str) -> int | None:
    """Script of a letter, None for anything else (digits, punctuation, symbols, emoji, combining marks)."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    words = unicodedata.name(ch, "").split()[:2]  # "LATIN SMALL LETTER A", "FULLWIDTH LATIN CAPITAL LETTER A"
    for word in words:
        if word in _SCRIPT_WORDS:
            return _SCRIPT_WORDS[word]
    return _OTHER


def script_class(token: str) -> int:
    """Index into SCRIPTS: the script of a token's letters; Common without letters ("1984", "?!", "🙂", ""),
    Mixed for letters of several scripts ("Mоscow" with a Cyrillic о), Other for letters of a script not listed."""
    if token.isascii():
        return 0 if token.lower() != token.upper() else _COMMON
    found = {s for s in map(_char_script, token) if s is not None}
    if not found:
        return _COMMON
    return found.pop() if len(found) == 1 else _MIXED


class TokenClasses(dict[str, int]):
    """token -> its code (unknown, case, script packed), computed on first sight and remembered.

    A dict whose misses fill themselves: a lookup that hits costs what a dict lookup costs.
    """

    def __init__(self, vocab: Vocab, size: int = CACHE_SIZE) -> None:
        super().__init__()
        self.vocab, self.size = vocab, size

    def __missing__(self, token: str) -> int:
        unknown = int(self.vocab.word_id(token) == UNK)
        code = (unknown * len(CASES) + case_class(token)) * len(SCRIPTS) + script_class(token)
        if len(self) >= self.size:
            self.clear()
        self[token] = code
        return code

    def codes(self, tokens: Sequence[str]) -> list[int]:
        """Each token's code; see `Counts.tokens` for the packing."""
        return list(map(self.__getitem__, tokens))


def _bucket_counts(values: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Counts per bucket (len(bounds) + 1): values [0.5, 0.95, 1.0], bounds (0.9, 0.99) -> [1, 1, 1]."""
    return np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds) + 1)


@dataclass
class Counts:
    """Integer counts of one model's traffic; `merge` adds another's (other batches, processes, replicas)."""

    tags: tuple[str, ...]  # output tags (IOB2 for span models), as answers carry them
    labels: tuple[str, ...]  # span labels; empty for plain tag sets
    tokens: np.ndarray  # (2, len(CASES), len(SCRIPTS)) int64: [unknown?, case, script]
    lengths: np.ndarray  # (len(LENGTH_BOUNDS) + 1,) sentences by length bucket
    chosen: np.ndarray  # (len(tags),) tokens by chosen tag
    probability: np.ndarray  # (len(PROBABILITY_BOUNDS) + 1,) tokens by chosen tag's probability bucket
    spans: np.ndarray  # (len(labels),) spans by label

    @classmethod
    def empty(cls, tags: Sequence[str], labels: Sequence[str] = ()) -> Counts:
        sizes = ((2, len(CASES), len(SCRIPTS)), len(LENGTH_BOUNDS) + 1, len(tags), len(PROBABILITY_BOUNDS) + 1)
        return cls(tuple(tags), tuple(labels), *(np.zeros(n, dtype=np.int64) for n in (*sizes, len(labels))))

    def merge(self, other: Counts) -> None:
        """Add `other`'s counts to these, in place; both must count the same tags and labels."""
        if other.tags != self.tags or other.labels != self.labels:
            raise ValueError(f"cannot merge counts of tags {other.tags} into counts of tags {self.tags}")
        self.tokens += other.tokens
        self.lengths += other.lengths
        self.chosen += other.chosen
        self.probability += other.probability
        self.spans += other.spans

    def add_codes(self, codes: Sequence[int] | np.ndarray, lengths: Sequence[int] | np.ndarray) -> None:
        """Count tokens by their codes (`TokenClasses.codes`, all sentences together) and sentences by length."""
        self.tokens += np.bincount(np.asarray(codes, dtype=np.int64), minlength=N_CODES).reshape(self.tokens.shape)
        self.lengths += _bucket_counts(np.asarray(lengths), LENGTH_BOUNDS)

    def by_label(self) -> dict[str, dict[str, int]]:
        """Token and span counts by what they count, as labelled counters take them (histograms: `lengths`,
        `probability` with LENGTH_BOUNDS and PROBABILITY_BOUNDS)."""
        return {
            "word": {"unknown": int(self.tokens[1].sum()), "known": int(self.tokens[0].sum())},
            "case": dict(zip(CASES, self.tokens.sum(axis=(0, 2)).tolist(), strict=True)),
            "script": dict(zip(SCRIPTS, self.tokens.sum(axis=(0, 1)).tolist(), strict=True)),
            "tag": dict(zip(self.tags, self.chosen.tolist(), strict=True)),
            "span": dict(zip(self.labels, self.spans.tolist(), strict=True)),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain lists of ints: for messages between processes."""
        arrays = {f.name: getattr(self, f.name).tolist() for f in fields(self) if f.name not in ("tags", "labels")}
        return {"tags": list(self.tags), "labels": list(self.labels), **arrays}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counts:
        return cls(
            tags=tuple(data["tags"]),
            labels=tuple(data["labels"]),
            **{k: np.asarray(data[k], dtype=np.int64) for k in ("tokens", "lengths", "chosen", "probability", "spans")},
        )

    def profile(self, source: Mapping[str, str] | None = None) -> Profile:
        """What these counts say as shares and rates."""
        tokens = int(self.tokens.sum())
        decoded = int(self.chosen.sum())
        low = PROBABILITY_BOUNDS.index(LOW_CONFIDENCE) + 1  # the buckets at or under the threshold
        spans = {label: 100 * _ratio(int(n), decoded) for label, n in zip(self.labels, self.spans, strict=True)}
        return Profile(
            tokens=tokens,
            sentences=int(self.lengths.sum()),
            unknown_rate=_ratio(int(self.tokens[1].sum()), tokens),
            case_mix=_shares(CASES, self.tokens.sum(axis=(0, 2))),
            script_mix=_shares(SCRIPTS, self.tokens.sum(axis=(0, 1))),
            tag_shares=_shares(self.tags, self.chosen),
            spans_per_100_tokens=spans,
            sentence_lengths=Histogram(LENGTH_BOUNDS, tuple(int(n) for n in self.lengths)),
            probability=Histogram(PROBABILITY_BOUNDS, tuple(int(n) for n in self.probability)),
            low_confidence_threshold=LOW_CONFIDENCE,
            low_confidence_share=_ratio(int(self.probability[:low].sum()), int(self.probability.sum())),
            source=dict(source or {}),
        )


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _shares(names: Sequence[str], counts: np.ndarray) -> dict[str, float]:
    total = int(counts.sum())
    return {name: _ratio(int(n), total) for name, n in zip(names, counts, strict=True)}


def _output_tag_of(tag: str, output_tags: Sequence[str]) -> int:
    """The output tag a model tag is answered as: itself, or in IOB2 for a BIOES model (S-X -> B-X, E-X -> I-X)."""
    named = tag if tag in output_tags else {"S": "B", "E": "I"}.get(tag[:1], tag[:1]) + tag[1:]
    if named not in output_tags:
        raise ValueError(f"model tag {tag!r} has no output tag among {list(output_tags)}")
    return list(output_tags).index(named)


class Profiler:
    """Counts one model's drift statistics: built once per loaded model, fed every batch."""

    def __init__(self, vocab: Vocab, decoder: Decoder, cache_size: int = CACHE_SIZE) -> None:
        self.classes = TokenClasses(vocab, cache_size)
        self.tags = decoder.output_tags
        self.labels = tuple(sorted({t[2:] for t in self.tags if t != "O"})) if decoder.scheme else ()
        self._fold = np.array([_output_tag_of(t, self.tags) for t in decoder.tags], dtype=np.int64)
        self._label_index = {label: i for i, label in enumerate(self.labels)}

    def counts(self) -> Counts:
        """Empty counts for this model."""
        return Counts.empty(self.tags, self.labels)

    def count_input(self, counts: Counts, sentences: Sequence[Sequence[str]]) -> None:
        """Count tokens (unknown, case, script) and sentence lengths."""
        lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
        tokens = chain.from_iterable(sentences)
        counts.add_codes(np.fromiter(map(self.classes.__getitem__, tokens), np.int64, int(lengths.sum())), lengths)

    def count_output(self, counts: Counts, decoded: Sequence[Decoded]) -> None:
        """Count chosen tags, their probabilities and spans by label."""
        if not decoded:
            return
        ids = np.concatenate([d.ids for d in decoded])  # model tag ids, all tokens of the batch
        counts.chosen += np.bincount(self._fold[ids], minlength=len(self.tags))
        counts.probability += _bucket_counts(np.concatenate([d.probs for d in decoded]), PROBABILITY_BOUNDS)
        if self.labels:
            found = [self._label_index[s.label] for d in decoded for s in d.spans]
            counts.spans += np.bincount(np.asarray(found, dtype=np.int64), minlength=len(self.labels))

    def count(self, counts: Counts, sentences: Sequence[Sequence[str]], decoded: Sequence[Decoded]) -> None:
        self.count_input(counts, sentences)
        self.count_output(counts, decoded)


@dataclass(frozen=True)
class Histogram:
    """Counts per bucket: counts[i] <= bounds[i] (above bounds[i - 1]); the last count is above every bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class Profile:
    """Shares and rates of a set of counts: the reference an export carries (profile.json), or live figures."""

    tokens: int
    sentences: int
    unknown_rate: float  # tokens that map to the word vocabulary's unknown id
    case_mix: dict[str, float]  # CASES -> share of tokens
    script_mix: dict[str, float]  # SCRIPTS -> share of tokens
    tag_shares: dict[str, float]  # output tag -> share of tokens
    spans_per_100_tokens: dict[str, float]  # span label -> spans per 100 tokens (span models only)
    sentence_lengths: Histogram  # sentences by tokens
    probability: Histogram  # tokens by the chosen tag's probability
    low_confidence_threshold: float
    low_confidence_share: float  # tokens whose chosen tag's probability <= low_confidence_threshold
    source: dict[str, str]  # what it was computed on: data file, its sha256, model.onnx's sha256
    format_version: int = PROFILE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Profile:
        """Read a profile; the format version and the histogram buckets must be this tagger's."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ProfileError(f"not valid JSON ({err})") from None
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != PROFILE_VERSION:
            raise ProfileError(
                f"profile format_version {version!r} is not supported (this tagger reads version {PROFILE_VERSION}); "
                "recompute it with `tagger profile FOLDER`"
            )
        try:
            data |= {k: Histogram(tuple(data[k]["bounds"]), tuple(data[k]["counts"])) for k in _HISTOGRAMS}
            profile = cls(**data)
        except (KeyError, TypeError) as err:
            raise ProfileError(f"unexpected or missing fields ({err})") from None
        for name, bounds in _HISTOGRAMS.items():
            got = getattr(profile, name)
            if got.bounds != bounds or len(got.counts) != len(bounds) + 1:
                raise ProfileError(f"{name} buckets {list(got.bounds)} are not this tagger's {list(bounds)}")
        return profile


_HISTOGRAMS = {"sentence_lengths": LENGTH_BOUNDS, "probability": PROBABILITY_BOUNDS}


def psi(live: Mapping[str, float], reference: Mapping[str, float], floor: float = 1e-4) -> float:
    """Population stability index of two share vectors: sum (a - e) ln(a / e), shares floored at `floor`.

    Example: {"A": 0.5, "B": 0.5} against itself -> 0.0; against {"A": 0.9, "B": 0.1} -> 0.879.
    """
    total = 0.0
    for key in set(live) | set(reference):
        a, e = max(live.get(key, 0.0), floor), max(reference.get(key, 0.0), floor)
        total += (a - e) * math.log(a / e)
    return total


def reference_profile(runtime: Runtime, sentences: Sequence[Sequence[str]], source: Mapping[str, str]) -> Profile:
    """The profile of `sentences` as the exported graph tags them (ONNX Runtime, the served decoder)."""
    sentences = [s for s in sentences if s]
    profiler = Profiler(runtime.vocab, runtime.decoder)
    counts = profiler.counts()
    profiler.count(counts, sentences, runtime.tag_sentences(sentences))
    return counts.profile(source)
