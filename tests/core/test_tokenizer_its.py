"""`its` meaning "it is" is cut as EWT cuts it; the possessive stays whole."""

from __future__ import annotations

import pytest

from tagger.tokenizer import Token, multiword_ranges, tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("its a shame", ["it", "s", "a", "shame"]),  # one multi-word token, as EWT writes it
        ("Its not fair", ["It", "s", "not", "fair"]),
        ("its really good", ["it", "s", "really", "good"]),
        ("its own name", ["its", "own", "name"]),
        ("the company and its employees", ["the", "company", "and", "its", "employees"]),
        ("its", ["its"]),
    ],
)
def test_its_is_cut_only_where_it_means_it_is(text: str, expected: list[str]) -> None:
    assert [t.text for t in tokenize(text)] == expected


def test_the_cut_keeps_offsets() -> None:
    assert tokenize("its a")[:2] == [Token("it", 0, 2), Token("s", 2, 3)]


def test_its_cut_is_one_multiword_token() -> None:
    assert multiword_ranges(tokenize("its a shame")) == [(0, 1)]
    assert multiword_ranges(tokenize("its own")) == []
