"""Span tag schemes: worked examples, round trips, seqeval agreement, decoding constraints."""

from __future__ import annotations

import itertools
import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from tagger.schemes import (
    SCHEMES,
    Scheme,
    Span,
    allowed_ends,
    allowed_starts,
    allowed_transitions,
    convert,
    detect_scheme,
    from_spans,
    is_span_tagset,
    to_spans,
)

LABELS = ("PER", "LOC", "ORG")


def random_spans(rng: random.Random, length: int) -> list[Span]:
    """Non-overlapping spans, often adjacent and of the same type (the case IOB1 is about)."""
    spans, i = [], 0
    while i < length:
        if rng.random() < 0.5:
            i += 1
            continue
        size = min(rng.randint(1, 3), length - i)
        spans.append(Span(rng.choice(LABELS[:2]), i, i + size))
        i += size
    return spans


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["B-PER", "I-PER", "O", "I-LOC"], [Span("PER", 0, 2), Span("LOC", 3, 4)]),
        (["B-PER", "B-PER", "I-PER"], [Span("PER", 0, 1), Span("PER", 1, 3)]),
        (["B-PER", "I-LOC", "I-LOC"], [Span("PER", 0, 1), Span("LOC", 1, 3)]),  # type switch inside a chunk
        (["O", "I-ORG", "I-ORG", "O"], [Span("ORG", 1, 3)]),  # I- after O opens a chunk
        (["B-LOC", "I-LOC", "E-LOC", "S-LOC", "O"], [Span("LOC", 0, 3), Span("LOC", 3, 4)]),
        (["E-PER", "E-PER"], [Span("PER", 0, 1), Span("PER", 1, 2)]),  # E- with no open chunk opens one
        (["B-PER", "I-PER"], [Span("PER", 0, 2)]),  # an unclosed chunk ends with the sentence
        ([], []),
    ],
)
def test_to_spans_worked_examples(tags: list[str], expected: list[Span]) -> None:
    assert to_spans(tags) == expected


def test_to_spans_agrees_with_seqeval_on_random_invalid_sequences() -> None:
    rng = random.Random(7)
    tagset = ["O"] + [f"{p}-{label}" for p in "BIES" for label in LABELS]
    for _ in range(500):
        tags = [rng.choice(tagset) for _ in range(rng.randint(0, 12))]
        expected = [Span(label, start, end + 1) for label, start, end in get_entities(tags)]
        for scheme in SCHEMES:
            assert to_spans(tags, scheme) == expected, tags


def test_from_spans_writes_the_valid_tagging_of_each_scheme() -> None:
    spans = [Span("PER", 0, 2), Span("PER", 2, 3), Span("LOC", 4, 5)]
    assert from_spans(spans, 6, "IOB2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "O"]
    assert from_spans(spans, 6, "IOB1") == ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "O"]
    assert from_spans(spans, 6, "BIOES") == ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "O"]


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(SCHEMES, 2)))
def test_convert_round_trips_valid_sequences(source: Scheme, target: Scheme) -> None:
    rng = random.Random(13)
    for _ in range(300):
        length = rng.randint(0, 15)
        spans = random_spans(rng, length)
        tags = from_spans(spans, length, source)
        converted = convert(tags, source, target)
        assert to_spans(converted, target) == spans
        assert convert(converted, target, source) == tags


def test_convert_iob1_to_iob2_and_bioes() -> None:
    iob1 = ["I-ORG", "O", "I-PER", "I-PER", "B-PER", "I-MISC"]
    assert convert(iob1, "IOB1", "IOB2") == ["B-ORG", "O", "B-PER", "I-PER", "B-PER", "B-MISC"]
    assert convert(iob1, "IOB1", "BIOES") == ["S-ORG", "O", "B-PER", "E-PER", "S-PER", "S-MISC"]


@pytest.mark.parametrize(
    ("sequences", "scheme"),
    [
        ([["I-PER", "I-PER", "B-PER", "O"], ["O", "I-LOC"]], "IOB1"),
        ([["B-PER", "I-PER", "O"], ["I-LOC"]], "IOB2"),  # noisy IOB2: one I- opens a chunk, B- also does
        ([["B-PER", "E-PER", "O"]], "BIOES"),
        ([["O", "S-LOC"]], "BIOES"),
        ([["O", "O"], []], "IOB2"),  # no evidence
    ],
)
def test_detect_scheme_from_the_tags_in_use(sequences: list[list[str]], scheme: Scheme) -> None:
    assert detect_scheme(sequences) == scheme


@pytest.mark.parametrize("tag", ["B-", "X-PER", "B", "PER", "b-PER", "-PER", ""])
def test_malformed_tags_raise_naming_the_tag(tag: str) -> None:
    with pytest.raises(ValueError, match=f"malformed span tag {tag!r}"):
        to_spans(["O", tag])
    with pytest.raises(ValueError, match=f"malformed span tag {tag!r}"):
        detect_scheme([[tag]])


def test_is_span_tagset_tells_ner_from_pos_tags() -> None:
    assert is_span_tagset(["O", "B-PER", "I-PER", "S-LOC"])
    assert is_span_tagset(["O"])
    assert not is_span_tagset(["NOUN", "VERB", "X"])
    assert not is_span_tagset(["NN", "-LRB-", "-RRB-", "HYPH"])  # XPOS
    with pytest.raises(ValueError, match="'X-PER'"):
        is_span_tagset(["O", "B-PER", "X-PER"])  # a typo, not a POS tag set


def test_unknown_scheme_and_bad_spans_raise() -> None:
    with pytest.raises(ValueError, match="unknown tag scheme 'BIO'"):
        to_spans(["O"], "BIO")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlaps"):
        from_spans([Span("PER", 0, 2), Span("LOC", 1, 3)], 4)
    with pytest.raises(ValueError, match="ends after the sentence"):
        from_spans([Span("PER", 2, 5)], 4)
    with pytest.raises(ValueError, match="start < end"):
        Span("PER", 2, 2)


TINY = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TINY_BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def named(pairs: list[tuple[int, int]], tagset: list[str]) -> set[tuple[str, str]]:
    return {(tagset[i], tagset[j]) for i, j in pairs}


def test_iob2_transitions_spelled_out() -> None:
    forbidden = {(a, b) for a in TINY for b in ("I-PER", "I-LOC")}
    forbidden -= {("B-PER", "I-PER"), ("I-PER", "I-PER"), ("B-LOC", "I-LOC"), ("I-LOC", "I-LOC")}
    everything = set(itertools.product(TINY, TINY))
    assert named(allowed_transitions(TINY, "IOB2"), TINY) == everything - forbidden
    assert [TINY[i] for i in allowed_starts(TINY, "IOB2")] == ["O", "B-PER", "B-LOC"]
    assert [TINY[i] for i in allowed_ends(TINY, "IOB2")] == TINY


def test_iob1_transitions_spelled_out() -> None:
    forbidden = {(a, b) for a in TINY for b in ("B-PER", "B-LOC")}
    forbidden -= {("B-PER", "B-PER"), ("I-PER", "B-PER"), ("B-LOC", "B-LOC"), ("I-LOC", "B-LOC")}
    everything = set(itertools.product(TINY, TINY))
    assert named(allowed_transitions(TINY, "IOB1"), TINY) == everything - forbidden
    assert [TINY[i] for i in allowed_starts(TINY, "IOB1")] == ["O", "I-PER", "I-LOC"]


def test_bioes_transitions_spelled_out() -> None:
    allowed = named(allowed_transitions(TINY_BIOES, "BIOES"), TINY_BIOES)
    assert {b for a, b in allowed if a == "B-PER"} == {"I-PER", "E-PER"}
    assert {b for a, b in allowed if a == "I-LOC"} == {"I-LOC", "E-LOC"}
    closed = {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"}
    for after in ("O", "E-PER", "S-PER", "E-LOC", "S-LOC"):
        assert {b for a, b in allowed if a == after} == closed
    assert {TINY_BIOES[i] for i in allowed_starts(TINY_BIOES, "BIOES")} == closed
    assert {TINY_BIOES[i] for i in allowed_ends(TINY_BIOES, "BIOES")} == {"O", "E-PER", "S-PER", "E-LOC", "S-LOC"}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_constraints_accept_exactly_the_valid_sequences_brute_force(scheme: Scheme) -> None:
    """A sequence is valid when re-tagging its own spans gives it back; check all sequences up to length 4."""
    tagset = TINY_BIOES if scheme == "BIOES" else TINY
    transitions = set(allowed_transitions(tagset, scheme))
    starts, ends = set(allowed_starts(tagset, scheme)), set(allowed_ends(tagset, scheme))
    for length in range(1, 5):
        for ids in itertools.product(range(len(tagset)), repeat=length):
            tags = [tagset[i] for i in ids]
            allowed = ids[0] in starts and ids[-1] in ends and all(p in transitions for p in itertools.pairwise(ids))
            assert allowed == (convert(tags, scheme, scheme) == tags), tags


def test_non_span_tag_sets_allow_everything() -> None:
    upos = ["NOUN", "VERB", "PUNCT"]
    assert len(allowed_transitions(upos, "IOB2")) == 9
    assert allowed_starts(upos, "BIOES") == allowed_ends(upos, "BIOES") == [0, 1, 2]


def test_constraints_reject_tags_outside_the_scheme() -> None:
    with pytest.raises(ValueError, match="'S-PER' does not belong to the IOB2 scheme"):
        allowed_transitions(["O", "B-PER", "S-PER"], "IOB2")
    with pytest.raises(ValueError, match="malformed span tag 'B-'"):
        allowed_transitions(["O", "B-PER", "B-"], "IOB2")
    with pytest.raises(ValueError, match="duplicates"):
        allowed_starts(["O", "O"], "IOB2")
