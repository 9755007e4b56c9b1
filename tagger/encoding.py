"""Tokens -> padded id arrays: the one encoder that training and serving share.

A model trained today must serve identically tomorrow, so every decision that
turns a token into numbers (case folding, digit fallback, casing class, the
character cap) lives here and nowhere else. The vocabularies travel inside each
export as JSON (`Vocab.to_dict`), never as a pickle.

Word lookup is case-insensitive (GloVe 6B is lower-cased); the casing that the
lookup throws away comes back through a small casing feature and the
character features, as in Reimers & Gurevych (2017) and Lample et al. (2016).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from tagger.gazetteer import INPUT_NAME as GAZETTEER_INPUT
from tagger.gazetteer import Gazetteer

PAD = 0
UNK = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"

# Casing classes; 0 is padding.
CASINGS = (
    "<pad>",
    "numeric",
    "mainly_numeric",
    "lower",
    "upper",
    "title",
    "contains_digit",
    "other",
)
_DIGITS = re.compile(r"\d")
# Tokens whose ids are remembered per vocabulary (cleared when full): text is
# Zipfian, so most tokens of a request were seen before, and encoding is
# per-token Python on the service's busiest thread.
TOKEN_CACHE_SIZE = 50_000


def word_key(token: str) -> str:
    """The vocabulary key of a token: case-folded (`"Paris" -> "paris"`)."""
    return token.lower()


def digit_key(token: str) -> str:
    """Fallback key with every digit replaced by 0 (`"1984" -> "0000"`)."""
    return _DIGITS.sub("0", token.lower())


def casing(token: str) -> int:
    """Casing class of a token, an index into `CASINGS` (never 0)."""
    digits = sum(ch.isdigit() for ch in token)
    if token.isdigit():
        return 1
    if digits / max(len(token), 1) > 0.5:
        return 2
    if digits:
        return 6
    if token.islower():
        return 3
    if token.isupper():
        return 4
    if token[:1].isupper():
        return 5
    return 7


@dataclass(frozen=True)
class Batch:
    """Padded arrays for a batch of B sentences, T tokens, C characters per token."""

    words: np.ndarray  # (B, T) int64 word ids, PAD beyond each length
    cases: np.ndarray  # (B, T) int64 casing ids
    chars: np.ndarray  # (B, T, C) int64 character ids, PAD beyond each word
    lengths: np.ndarray  # (B,) int64 tokens per sentence
    gazetteer: np.ndarray | None = None  # (B, T, L) int64 codes per name list (`tagger.gazetteer`), models with lists

    def inputs(self) -> dict[str, np.ndarray]:
        """The ONNX graph's inputs, by name (`gazetteer` only for a model with name lists)."""
        inputs = {
            "words": self.words,
            "cases": self.cases,
            "chars": self.chars,
            "lengths": self.lengths,
        }
        if self.gazetteer is not None:
            inputs[GAZETTEER_INPUT] = self.gazetteer
        return inputs


@dataclass(frozen=True)
class Encoded:
    """One sentence's ids before padding (what the service queues per sentence).

    Plain Python sequences: encoding runs per request on the event loop, and
    `pad` turns a whole batch of them into arrays at once.
    """

    words: Sequence[int]  # n word ids
    cases: Sequence[int]  # n casing ids
    chars: Sequence[Sequence[int]]  # n sequences of character ids
    gazetteer: Sequence[Sequence[int]] | None = None  # n tuples of one code per name list (models with lists)

    def __len__(self) -> int:
        return len(self.words)


def pad(sentences: Sequence[Encoded]) -> Batch:
    """Pad encoded sentences into one batch, as wide as its longest sentence and token.

    A fixed number of numpy calls per batch, whatever its size: this runs on
    the model's inference process (or thread), between model runs, for every batch.
    """
    if not sentences:
        raise ValueError("cannot pad an empty batch")
    lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
    b, t, total = len(sentences), int(lengths.max()), int(lengths.sum())
    # each token's flat position in (b, t): sentence i's tokens start at i * t
    firsts = np.cumsum(lengths) - lengths
    at = np.arange(total) + np.repeat(np.arange(0, b * t, t) - firsts, lengths)
    tokens = [ids for s in sentences for ids in s.chars]
    sizes = np.fromiter(map(len, tokens), np.int64, total)
    width = max(int(sizes.max()), 1)
    # each character's flat position in (b, t, width)
    char_at = np.arange(int(sizes.sum())) + np.repeat(at * width - (np.cumsum(sizes) - sizes), sizes)
    flat_words = np.zeros(b * t, dtype=np.int64)
    flat_cases = np.zeros(b * t, dtype=np.int64)
    flat_chars = np.zeros(b * t * width, dtype=np.int64)
    flat_words[at] = list(chain.from_iterable(s.words for s in sentences))
    flat_cases[at] = list(chain.from_iterable(s.cases for s in sentences))
    flat_chars[char_at] = list(chain.from_iterable(tokens))
    words, cases, chars = flat_words.reshape(b, t), flat_cases.reshape(b, t), flat_chars.reshape(b, t, width)
    gazetteer = _pad_gazetteer(sentences, at, b * t) if sentences[0].gazetteer is not None else None
    return Batch(words=words, cases=cases, chars=chars, lengths=lengths, gazetteer=gazetteer)


def _pad_gazetteer(sentences: Sequence[Encoded], at: np.ndarray, size: int) -> np.ndarray:
    """(B, T, L) name-list codes, PAD beyond each length; `at` is each token's flat position in (B, T)."""
    if any(s.gazetteer is None for s in sentences):
        raise ValueError("cannot pad sentences with and without name-list codes into one batch")
    codes = np.array([c for s in sentences for c in s.gazetteer or ()], dtype=np.int64)  # (total, L)
    flat = np.zeros((size, codes.shape[1]), dtype=np.int64)
    flat[at] = codes
    return flat.reshape(len(sentences), size // len(sentences), codes.shape[1])


@dataclass(frozen=True)
class Vocab:
    """Word, character and tag inventories, plus the character cap per token.

    `words[0]` and `chars[0]` are padding, `words[1]` and `chars[1]` unknown.
    """

    words: tuple[str, ...]
    chars: tuple[str, ...]
    tags: tuple[str, ...]
    max_word_chars: int = 30
    gazetteer: Gazetteer | None = None  # name lists the model reads as a feature (`tagger.gazetteer`), or none
    _word_index: dict[str, int] = field(init=False, repr=False, compare=False)
    _char_index: dict[str, int] = field(init=False, repr=False, compare=False)
    _tag_index: dict[str, int] = field(init=False, repr=False, compare=False)
    _tokens: dict[str, tuple[int, int, tuple[int, ...]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, items in (("words", self.words), ("chars", self.chars)):
            if tuple(items[:2]) != (PAD_TOKEN, UNK_TOKEN):
                raise ValueError(f"{name} must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}")
            if len(set(items)) != len(items):
                raise ValueError(f"{name} has duplicate entries")
        if len(set(self.tags)) != len(self.tags) or not self.tags:
            raise ValueError(f"tags must be non-empty and unique, got {list(self.tags)}")
        if self.max_word_chars < 1:
            raise ValueError(f"max_word_chars must be >= 1, got {self.max_word_chars}")
        object.__setattr__(self, "_word_index", {w: i for i, w in enumerate(self.words)})
        object.__setattr__(self, "_char_index", {c: i for i, c in enumerate(self.chars)})
        object.__setattr__(self, "_tag_index", {t: i for i, t in enumerate(self.tags)})
        object.__setattr__(self, "_tokens", {})

    def word_id(self, token: str) -> int:
        """Id of a token: its case-folded form, else its digit-folded form, else UNK."""
        index = self._word_index
        found = index.get(word_key(token))
        if found is None:
            found = index.get(digit_key(token), UNK)
        return found

    def char_ids(self, token: str) -> list[int]:
        """Character ids of a token, cut to `max_word_chars` (first half + last half)."""
        cap = self.max_word_chars
        if len(token) > cap:
            head = (cap + 1) // 2
            token = token[:head] + token[len(token) - (cap - head) :]
        index = self._char_index
        return [index.get(ch, UNK) for ch in token]

    def token_ids(self, token: str) -> tuple[int, int, tuple[int, ...]]:
        """(word id, casing class, character ids) of a token, remembered for the next time it comes."""
        found = self._tokens.get(token)
        if found is None:
            # all immutable: the garbage collector stops tracking such tuples
            found = (self.word_id(token), casing(token), tuple(self.char_ids(token)))
            if len(self._tokens) >= TOKEN_CACHE_SIZE:
                self._tokens.clear()
            self._tokens[token] = found
        return found

    def encode_sentence(self, tokens: Sequence[str]) -> Encoded:
        """Ids of one sentence, ready to be padded into a batch with others by `pad`."""
        if not tokens:
            raise ValueError("cannot encode a sentence with no tokens")
        words, cases, chars = zip(*map(self.token_ids, tokens), strict=True)
        if self.gazetteer is None:
            return Encoded(words=words, cases=cases, chars=chars)
        return Encoded(words=words, cases=cases, chars=chars, gazetteer=self.gazetteer.encode(tokens))

    def encode(self, sentences: Sequence[Sequence[str]]) -> Batch:
        """Encode and pad a batch of tokenized sentences.

        Example: [["The", "cat"], ["Hi"]] -> words (2, 2), chars (2, 2, 3),
        lengths [2, 1]. Empty sentences are refused: the graph needs >= 1 token.
        """
        if not sentences:
            raise ValueError("cannot encode an empty batch")
        for i, sentence in enumerate(sentences):
            if not sentence:
                raise ValueError(f"sentence {i} has no tokens")
        return pad([self.encode_sentence(s) for s in sentences])

    def tag_ids(self, tags: Sequence[str]) -> list[int]:
        """Ids of gold tags; an unknown tag is an error, never silently remapped."""
        try:
            return [self._tag_index[t] for t in tags]
        except KeyError as err:
            raise ValueError(f"tag {err.args[0]!r} is not in the tag set {list(self.tags)}") from None

    def to_dict(self) -> dict[str, Any]:
        """As stored in vocab.json; a `gazetteer` key only for a model with name lists."""
        data: dict[str, Any] = {
            "words": list(self.words),
            "chars": list(self.chars),
            "tags": list(self.tags),
            "max_word_chars": self.max_word_chars,
        }
        if self.gazetteer is not None:
            data["gazetteer"] = self.gazetteer.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        return cls(
            words=tuple(data["words"]),
            chars=tuple(data["chars"]),
            tags=tuple(data["tags"]),
            max_word_chars=int(data["max_word_chars"]),
            gazetteer=Gazetteer.from_dict(data["gazetteer"]) if "gazetteer" in data else None,
        )


def length_sorted(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, shortest first, to keep padding small.

    Example: lengths [5, 1, 4, 2], batch_size 2 -> [[1, 3], [2, 0]].
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
