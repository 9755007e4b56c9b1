"""The shared encoder: how tokens become ids, identically for training and serving."""

from __future__ import annotations

import numpy as np
import pytest

from tagger.encoding import CASINGS, PAD, UNK, Vocab, casing, length_sorted


@pytest.fixture
def vocab() -> Vocab:
    return Vocab(
        words=("<pad>", "<unk>", "the", "paris", "0000", "1984"),
        chars=("<pad>", "<unk>", *"abcdefghijklmnopqrstuvwxyzTP0123456789"),
        tags=("DET", "NOUN", "PROPN", "NUM"),
        max_word_chars=6,
    )


def test_word_lookup_is_case_insensitive(vocab: Vocab) -> None:
    assert vocab.word_id("The") == vocab.word_id("THE") == vocab.word_id("the") == 2
    assert vocab.word_id("Paris") == 3


def test_numbers_fall_back_to_their_digit_shape(vocab: Vocab) -> None:
    assert vocab.word_id("1984") == 5  # known as itself
    assert vocab.word_id("2023") == 4  # unknown: folded to 0000
    assert vocab.word_id("zebra") == UNK


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("123", "numeric"),
        ("12a4", "mainly_numeric"),
        ("cat", "lower"),
        ("NASA", "upper"),
        ("Paris", "title"),
        ("b2b", "contains_digit"),
        ("iPhone", "other"),
        (".", "other"),
    ],
)
def test_casing_classes(token: str, expected: str) -> None:
    assert CASINGS[casing(token)] == expected


def test_long_tokens_keep_their_head_and_tail(vocab: Vocab) -> None:
    ids = vocab.char_ids("abcdefghij")  # cap 6: "abc" + "hij"
    assert ids == vocab.char_ids("abc") + vocab.char_ids("hij")
    assert vocab.char_ids("é") == [UNK]


def test_encode_pads_every_array(vocab: Vocab) -> None:
    batch = vocab.encode([["The", "Paris", "1984"], ["the"]])
    assert batch.words.tolist() == [[2, 3, 5], [2, PAD, PAD]]
    assert batch.lengths.tolist() == [3, 1]
    assert batch.chars.shape == (2, 3, 5)  # longest token: "Paris"
    assert batch.chars[1, 1:].max() == PAD and batch.cases[1, 1:].max() == PAD
    assert all(a.dtype == np.int64 for a in batch.inputs().values())


def test_encode_refuses_empty_input(vocab: Vocab) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        vocab.encode([])
    with pytest.raises(ValueError, match="sentence 1 has no tokens"):
        vocab.encode([["a"], []])


def test_unknown_gold_tag_is_an_error(vocab: Vocab) -> None:
    assert vocab.tag_ids(["NUM", "DET"]) == [3, 0]
    with pytest.raises(ValueError, match="'VERB' is not in the tag set"):
        vocab.tag_ids(["VERB"])


def test_vocab_round_trips_through_json_dict(vocab: Vocab) -> None:
    assert Vocab.from_dict(vocab.to_dict()) == vocab


def test_vocab_refuses_a_missing_padding_entry() -> None:
    with pytest.raises(ValueError, match="words must start with '<pad>', '<unk>'"):
        Vocab(words=("a", "b"), chars=("<pad>", "<unk>"), tags=("X",))


def test_length_sorted_groups_similar_lengths() -> None:
    assert length_sorted([5, 1, 4, 2], 2) == [[1, 3], [2, 0]]
