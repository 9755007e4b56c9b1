"""A correction checked against its model before it is stored: the tag set, a length limit, the tag scheme.

Each check raises `InvalidCorrection` naming the first offending token's index and tag, so the HTTP layer
can answer 422 with something a person can fix ("token 3 (tag 'I-LOC'): cannot follow 'O' in IOB2").
Tokens must also survive the export formats: no tab or line break (they split columns and lines), no
leading or trailing space (the column reader strips it), not empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from service.corrections.errors import InvalidCorrection
from service.corrections.records import Correction, Offsets
from tagger.schemes import Scheme, allowed_starts, allowed_transitions

_BAD_CHARACTERS = ("\t", "\n", "\r", "\ufeff")


@dataclass(frozen=True)
class TagRules:
    """What a model accepts: its output tags (IOB2 for span tags), their scheme, and the longest sentence."""

    tags: tuple[str, ...]
    scheme: Scheme | None  # None for plain tags (UPOS): any order is valid
    max_tokens: int

    @cached_property
    def _index(self) -> dict[str, int]:
        return {tag: i for i, tag in enumerate(self.tags)}

    @cached_property
    def _starts(self) -> frozenset[int]:
        return frozenset(allowed_starts(self.tags, self.scheme)) if self.scheme else frozenset(self._index.values())

    @cached_property
    def _pairs(self) -> frozenset[tuple[int, int]]:
        return frozenset(allowed_transitions(self.tags, self.scheme)) if self.scheme else frozenset()

    def check(self, correction: Correction) -> None:
        """Raise `InvalidCorrection` for the first problem found; return None when the correction fits."""
        tokens, tags = correction.tokens, correction.tags
        if not tokens:
            raise InvalidCorrection("a correction needs at least one token")
        if len(tokens) > self.max_tokens:
            raise InvalidCorrection(f"the sentence has {len(tokens)} tokens; at most {self.max_tokens} are accepted")
        if len(tags) != len(tokens):
            raise InvalidCorrection(f"expected one tag per token: {len(tokens)} tokens, {len(tags)} tags")
        _check_tokens(tokens)
        self._check_tags(tags)
        if correction.served_tags is not None and len(correction.served_tags) != len(tokens):
            given = len(correction.served_tags)
            raise InvalidCorrection(f"expected one served tag per token: {len(tokens)} tokens, {given} served tags")
        if correction.offsets is not None:
            check_offsets(correction.offsets, tokens, correction.text)

    def _check_tags(self, tags: Sequence[str]) -> None:
        previous: int | None = None
        for i, tag in enumerate(tags):
            index = self._index.get(tag)
            if index is None:
                raise InvalidCorrection(f"not one of the model's tags ({', '.join(self.tags)})", i, tag)
            if self.scheme is not None:
                if previous is None and index not in self._starts:
                    raise InvalidCorrection(f"cannot open a sentence in {self.scheme}{_hint(tag)}", i, tag)
                if previous is not None and (previous, index) not in self._pairs:
                    before = self.tags[previous]
                    raise InvalidCorrection(f"cannot follow {before!r} in {self.scheme}{_hint(tag)}", i, tag)
            previous = index


def _hint(tag: str) -> str:
    return f" (an entity opens with B-{tag[2:]})" if tag.startswith("I-") else ""


def _check_tokens(tokens: Sequence[str]) -> None:
    for i, token in enumerate(tokens):
        if not token.strip():
            raise InvalidCorrection("the token is empty", i)
        if token != token.strip() or any(c in token for c in _BAD_CHARACTERS):
            raise InvalidCorrection(f"the token {token!r} has a tab, line break or space at an end", i)


def check_offsets(offsets: Offsets, tokens: Sequence[str], text: str | None) -> None:
    """Offsets need the text they point into, one (start, end) per token, in order, inside the text."""
    if text is None:
        raise InvalidCorrection("offsets need the text they point into")
    if len(offsets) != len(tokens):
        raise InvalidCorrection(f"expected one offset pair per token: {len(tokens)} tokens, {len(offsets)} pairs")
    end_before = 0
    for i, (start, end) in enumerate(offsets):
        if not end_before <= start < end <= len(text):
            raise InvalidCorrection(f"offsets ({start}, {end}) are out of order or outside the text", i)
        end_before = end
