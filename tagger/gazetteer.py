"""Name lists as a per-token input feature: which list matches where, B or I, as written or only case-folded.

A model trained with gazetteers gets, for every token and every list, one
code: no match, the first token of a match (B) or a later one (I), each in two
kinds, matched as written in the list (case-exact) or only case-insensitively
(`apple` against `Apple`). Web text writes names in lower case, so the lookup
is case-insensitive and the exact flag tells the network how much to trust it.

Within one list the longest match starting leftmost wins, and a match never
overlaps another of the same list: `New York City` against ["New York",
"New York City", "York"] is B I I. Lists are independent: a token can be in
a place match and a first-name match at once (`Jordan`).

The lists travel inside the export's vocab.json (`Vocab.to_dict`), so they are
checksummed with it, and the core computes the feature: serving stays one ONNX
call, with one more input, `gazetteer` (B, T, n_lists) int64.

Concession: a match is exact-token equality after lower-casing; no stemming,
no plural, no fuzzy spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

GAZETTEER_FORMAT = "tagger-gazetteer-1"
INPUT_NAME = "gazetteer"
# Codes per list; 0 is padding.
PAD_CODE, NO_MATCH, BEGIN, INSIDE, BEGIN_EXACT, INSIDE_EXACT = range(6)
N_CODES = 6


@dataclass(frozen=True)
class NameList:
    """One list: its entries as written (tokens joined by one space) and where they come from."""

    name: str
    entries: tuple[str, ...]
    source: str = ""  # package and version, or file
    licence: str = ""  # of the data, as shipped inside exports

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a name list needs a name")
        for entry in self.entries:
            if not entry or entry != " ".join(entry.split()):
                raise ValueError(f"list {self.name!r}: entry {entry!r} must be tokens joined by single spaces")


@dataclass(frozen=True)
class Gazetteer:
    """Several name lists and the index that matches them against a tokenized sentence."""

    lists: tuple[NameList, ...]
    # lower-cased token tuple -> indices of the lists holding it; exact token tuple -> the same
    _lower: dict[tuple[str, ...], tuple[int, ...]] = field(init=False, repr=False, compare=False)
    _exact: dict[tuple[str, ...], frozenset[int]] = field(init=False, repr=False, compare=False)
    # lower-cased first token -> the entry lengths starting with it, longest first
    _lengths: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [n.name for n in self.lists]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"a gazetteer needs one or more lists with distinct names, got {names}")
        lower: dict[tuple[str, ...], set[int]] = {}
        exact: dict[tuple[str, ...], set[int]] = {}
        lengths: dict[str, set[int]] = {}
        for k, name_list in enumerate(self.lists):
            for entry in name_list.entries:
                tokens = tuple(entry.split(" "))
                folded = tuple(t.lower() for t in tokens)
                lower.setdefault(folded, set()).add(k)
                exact.setdefault(tokens, set()).add(k)
                lengths.setdefault(folded[0], set()).add(len(tokens))
        object.__setattr__(self, "_lower", {key: tuple(sorted(v)) for key, v in lower.items()})
        object.__setattr__(self, "_exact", {key: frozenset(v) for key, v in exact.items()})
        object.__setattr__(self, "_lengths", {key: tuple(sorted(v, reverse=True)) for key, v in lengths.items()})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.lists)

    def encode(self, tokens: Sequence[str]) -> tuple[tuple[int, ...], ...]:
        """Per token, one code per list (NO_MATCH, BEGIN, INSIDE, BEGIN_EXACT, INSIDE_EXACT).

        Example, lists place=["New York"], first=["york"]: ["in", "new", "York"]
        -> ((NO_MATCH, NO_MATCH), (BEGIN, NO_MATCH), (INSIDE, BEGIN)): `new York` is a place only
        case-insensitively, `York` is the first-name entry `york` only case-insensitively.
        """
        n, k = len(tokens), len(self.lists)
        folded = [t.lower() for t in tokens]
        none = (NO_MATCH,) * k
        codes: list[tuple[int, ...]] = [none] * n  # most tokens match nothing: one shared tuple
        found: dict[int, list[int]] = {}  # position -> its codes, for the positions some match covers
        free = [0] * k  # per list, the first position not inside one of its matches
        for i in range(n):
            for length in self._lengths.get(folded[i], ()):
                if i + length > n:
                    continue
                hits = self._lower.get(tuple(folded[i : i + length]))
                if not hits:
                    continue
                exact = self._exact.get(tuple(tokens[i : i + length]), frozenset())
                for j in hits:
                    if free[j] > i:  # a longer match of this list starts here, or one covers it
                        continue
                    first, rest = (BEGIN_EXACT, INSIDE_EXACT) if j in exact else (BEGIN, INSIDE)
                    for p in range(i, i + length):
                        found.setdefault(p, [NO_MATCH] * k)[j] = first if p == i else rest
                    free[j] = i + length
        for p, own in found.items():
            codes[p] = tuple(own)
        return tuple(codes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": GAZETTEER_FORMAT,
            "lists": [
                {"name": n.name, "source": n.source, "licence": n.licence, "entries": list(n.entries)}
                for n in self.lists
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gazetteer:
        if data.get("format") != GAZETTEER_FORMAT:
            raise ValueError(f"gazetteer format {data.get('format')!r} is not {GAZETTEER_FORMAT!r}")
        return cls(
            tuple(
                NameList(str(d["name"]), tuple(d["entries"]), str(d.get("source", "")), str(d.get("licence", "")))
                for d in data["lists"]
            )
        )
