"""Span tag schemes (IOB1, IOB2, BIOES): tags <-> spans, conversion, decoding constraints.

A span tag is "O" or "<P>-<label>" with P one of B, I, E, S ("B-PER").
Reading tags into spans follows conlleval, as seqeval's default mode does, so
our span F1 equals the published scorers' even on invalid predictions. The
concession: under conlleval's rules chunk boundaries do not depend on the
scheme, so `to_spans` reads every prefix under every scheme instead of
rejecting, say, "S-PER" in IOB2. Writing spans out (`from_spans`) produces the
one valid tagging of the target scheme, which is what makes `convert` round-trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

Scheme = Literal["IOB1", "IOB2", "BIOES"]

SCHEMES: tuple[Scheme, ...] = get_args(Scheme)
_SCHEME_PREFIXES = {"IOB1": ("B", "I"), "IOB2": ("B", "I"), "BIOES": ("B", "I", "E", "S")}
_PREFIXES = ("B", "I", "E", "S")


@dataclass(frozen=True)
class Span:
    """Tokens [start, end) form one chunk of type `label`."""

    label: str
    start: int  # token index
    end: int  # exclusive

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("a span needs a non-empty label")
        if not 0 <= self.start < self.end:
            raise ValueError(f"expected 0 <= start < end, got start={self.start}, end={self.end}")


def _parse(tag: str) -> tuple[str, str]:
    """Split a span tag into (prefix, label): "B-PER" -> ("B", "PER"), "O" -> ("O", "")."""
    if tag == "O":
        return "O", ""
    prefix, dash, label = tag.partition("-")
    if not (dash and prefix in _PREFIXES and label):
        raise ValueError(f"malformed span tag {tag!r}: expected 'O' or '<P>-<label>', P in B, I, E, S (e.g. 'B-PER')")
    return prefix, label


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def is_span_tagset(tags: Iterable[str]) -> bool:
    """Whether every tag is "O" or "<P>-<label>" (P in B, I, E, S): NER-like, not POS-like.

    A set that mixes such tags with malformed ones ("B-PER" with "X-PER" or
    "B-") is a typo rather than a POS tag set, so it raises ValueError naming
    the bad tag. UPOS and XPOS sets (even with "-LRB-") are simply False.
    """
    tags = list(tags)
    bad = [tag for tag in tags if tag != "O" and not _is_span_tag(tag)]
    if bad and any(tag[:2] in ("B-", "I-", "E-", "S-") for tag in tags):
        _parse(bad[0])  # raises, naming the tag
    return not bad


def _is_span_tag(tag: str) -> bool:
    try:
        _parse(tag)
    except ValueError:
        return False
    return True


def detect_scheme(sequences: Iterable[Sequence[str]]) -> Scheme:
    """Tell which scheme tagged sequences use, from the evidence in them.

    BIOES if any E- or S- tag occurs. Otherwise IOB1 if some chunk opens with
    I-X (at the start, after O or after another type) while every B-X follows
    an X token, i.e. B- only separates adjacent chunks of one type; else IOB2
    (also for sequences with no chunks at all).
    [["I-PER", "B-PER", "O"]] -> "IOB1"; [["B-PER", "I-PER"]] -> "IOB2".
    """
    i_opens = b_opens = False
    for tags in sequences:
        previous = "O", ""
        for tag in tags:
            prefix, label = _parse(tag)
            if prefix in ("E", "S"):
                return "BIOES"
            continues = previous[0] != "O" and previous[1] == label
            i_opens |= prefix == "I" and not continues
            b_opens |= prefix == "B" and not continues
            previous = prefix, label
    return "IOB1" if i_opens and not b_opens else "IOB2"


def to_spans(tags: Sequence[str], scheme: Scheme = "IOB2") -> list[Span]:
    """Chunks of a tag sequence, read the way conlleval (and seqeval's default mode) reads them.

    Left to right, an open chunk ends before a token that is O, B- or S-, that
    follows an E- or S- tag, or whose label differs from the chunk's; a token
    that is not O and finds no open chunk starts one. So B-X always starts a
    chunk; I-X after O or after another type starts one (the IOB1 reading,
    lenient in IOB2); in BIOES S-X is a one-token chunk, E-X closes one, and an
    I-X or E-X with no open X chunk starts one. Invalid input never raises.

    ["B-PER", "I-PER", "O", "I-LOC"] -> [Span("PER", 0, 2), Span("LOC", 3, 4)]
    ["B-PER", "I-LOC", "E-LOC", "S-LOC"] -> [Span("PER", 0, 1), Span("LOC", 1, 3), Span("LOC", 3, 4)]
    """
    _check_scheme(scheme)
    spans: list[Span] = []
    start: int | None = None
    open_label = ""
    previous = "O"
    for i, tag in enumerate(tags):
        prefix, label = _parse(tag)
        if start is not None and (prefix in ("O", "B", "S") or previous in ("E", "S") or label != open_label):
            spans.append(Span(open_label, start, i))
            start = None
        if prefix != "O" and start is None:
            start, open_label = i, label
        previous = prefix
    if start is not None:
        spans.append(Span(open_label, start, len(tags)))
    return spans


def from_spans(spans: Iterable[Span], length: int, scheme: Scheme = "IOB2") -> list[str]:
    """The valid tagging of `length` tokens holding `spans` (non-overlapping) in `scheme`.

    IOB2: B-X then I-X. IOB1: I-X throughout, B-X only to open a chunk right
    after another X chunk. BIOES: S-X for one token, else B-X I-X... E-X.
    [Span("PER", 0, 2), Span("PER", 2, 3)], 4 -> IOB1 ["I-PER", "I-PER", "B-PER", "O"]
    """
    _check_scheme(scheme)
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    tags = ["O"] * length
    previous: Span | None = None
    for span in sorted(spans, key=lambda s: s.start):
        if span.end > length:
            raise ValueError(f"{span} ends after the sentence of length {length}")
        if previous is not None and span.start < previous.end:
            raise ValueError(f"{span} overlaps {previous}; spans must not overlap")
        size = span.end - span.start
        if scheme == "BIOES":
            prefixes = ["S"] if size == 1 else ["B"] + ["I"] * (size - 2) + ["E"]
        else:
            adjacent = previous is not None and previous.end == span.start and previous.label == span.label
            prefixes = ["B" if scheme == "IOB2" or adjacent else "I"] + ["I"] * (size - 1)
        tags[span.start : span.end] = [f"{prefix}-{span.label}" for prefix in prefixes]
        previous = span
    return tags


def convert(tags: Sequence[str], source: Scheme, target: Scheme) -> list[str]:
    """Re-tag a sequence from one scheme to another, via its spans.

    ["I-ORG", "O", "I-PER", "B-PER"] IOB1 -> BIOES ["S-ORG", "O", "S-PER", "S-PER"]
    """
    _check_scheme(target)
    return from_spans(to_spans(tags, source), len(tags), target)


def _span_tagset(tagset: Sequence[str], scheme: Scheme) -> list[tuple[str, str]] | None:
    """Parsed tags of a span tag set valid in `scheme`; None for a non-span set (e.g. UPOS)."""
    _check_scheme(scheme)
    if len(set(tagset)) != len(tagset):
        raise ValueError(f"tag set has duplicates: {sorted(t for t in set(tagset) if tagset.count(t) > 1)}")
    if not is_span_tagset(tagset):
        return None
    parsed = [_parse(tag) for tag in tagset]
    for tag, (prefix, _) in zip(tagset, parsed, strict=True):
        if prefix != "O" and prefix not in _SCHEME_PREFIXES[scheme]:
            raise ValueError(f"tag {tag!r} does not belong to the {scheme} scheme; convert the data or use BIOES")
    return parsed


def _may_follow(previous: tuple[str, str], tag: tuple[str, str], scheme: Scheme) -> bool:
    """Whether `tag` may come right after `previous` in a valid sequence of `scheme`."""
    continues = previous[0] in ("B", "I") and previous[1] == tag[1]
    if scheme == "IOB2":
        return tag[0] != "I" or continues
    if scheme == "IOB1":
        return tag[0] != "B" or continues
    if previous[0] in ("B", "I"):  # BIOES: an open chunk must go on or close
        return tag[0] in ("I", "E") and continues
    return tag[0] in ("O", "B", "S")


def allowed_transitions(tagset: Sequence[str], scheme: Scheme) -> list[tuple[int, int]]:
    """(from_index, to_index) pairs of tags that may be adjacent, for constrained decoding.

    IOB2: I-X only after B-X or I-X. IOB1: B-X only after B-X or I-X; I-X after
    anything. BIOES: after B-X or I-X only I-X or E-X; after O, E-* or S-* only
    O, B-* or S-*. A non-span tag set (UPOS) allows every pair.
    """
    parsed = _span_tagset(tagset, scheme)
    n = len(tagset)
    if parsed is None:
        return [(i, j) for i in range(n) for j in range(n)]
    return [(i, j) for i in range(n) for j in range(n) if _may_follow(parsed[i], parsed[j], scheme)]


def allowed_starts(tagset: Sequence[str], scheme: Scheme) -> list[int]:
    """Indexes of tags that may open a sentence: not I- in IOB2, not B- in IOB1, O/B-/S- in BIOES."""
    parsed = _span_tagset(tagset, scheme)
    if parsed is None:
        return list(range(len(tagset)))
    return [i for i, tag in enumerate(parsed) if _may_follow(("O", ""), tag, scheme)]


def allowed_ends(tagset: Sequence[str], scheme: Scheme) -> list[int]:
    """Indexes of tags that may close a sentence: all in IOB1/IOB2, O/E-/S- in BIOES."""
    parsed = _span_tagset(tagset, scheme)
    if parsed is None or scheme != "BIOES":
        return list(range(len(tagset)))
    return [i for i, (prefix, _) in enumerate(parsed) if prefix in ("O", "E", "S")]
