"""Control and format characters are never tokens (issue 30 item 11); multi-word tokens as EWT writes them."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from tagger.tokenizer import _INVISIBLE, Token, multiword_ranges, tokenize


def test_the_issue_example_leaves_only_the_emoji_at_its_offset() -> None:
    # before the fix: three tokens (`\u200b`, `\x00`, `😀`), tagged B-PER I-PER I-PER by en-ner
    assert tokenize("\u200b\u0000😀") == [Token("😀", 2, 3)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\ufeffHello world", [Token("Hello", 1, 6), Token("world", 7, 12)]),  # a byte-order mark
        ("Barack\u200bObama", [Token("Barack", 0, 6), Token("Obama", 7, 12)]),  # a zero-width space separates
        ("New\u0000York\u0007", [Token("New", 0, 3), Token("York", 4, 8)]),  # NUL, BEL
        ("\u202eevil\u202c", [Token("evil", 1, 5)]),  # bidi overrides
        ("co\u00adoperate", [Token("co\u00adoperate", 0, 10)]),  # a soft hyphen stays in its word
        ("\u200d\u200d", []),
        ("\u200c", []),
    ],
)
def test_control_and_format_characters_are_dropped_or_attached(text: str, expected: list[Token]) -> None:
    assert tokenize(text) == expected


def test_a_zero_width_joiner_inside_an_emoji_stays_in_it() -> None:
    family = "👨\u200d👩\u200d👧"
    assert tokenize(f"{family} ok") == [Token(family, 0, 5), Token("ok", 6, 8)]


def test_no_token_is_or_starts_with_an_invisible_character() -> None:
    invisible = [chr(c) for c in range(sys.maxunicode + 1) if _INVISIBLE.match(chr(c))]
    text = " ".join(f"a{ch}b {ch}x {ch}" for ch in invisible)
    for token in tokenize(text):
        assert not _INVISIBLE.match(token.text[0]), token
        assert text[token.start : token.end] == token.text


def test_the_invisible_class_is_every_control_and_format_character_but_whitespace() -> None:
    expected = {
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Cf") and not chr(c).isspace()
    }
    found = {chr(c) for c in range(sys.maxunicode + 1) if _INVISIBLE.match(chr(c))}
    assert found == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't know", [(1, 2)]),
        ("I'd've gone", [(0, 2)]),
        ("gonna go", [(0, 1)]),
        ("Bush's dog", [(0, 1)]),
        ("$5 well-known 1990s", []),  # pieces with no space between, but tokens of their own in EWT
        ("U.S.'s role", [(0, 1)]),
        ("", []),
    ],
)
def test_multiword_ranges_are_the_words_cut_into_clitics(text: str, expected: list[tuple[int, int]]) -> None:
    assert multiword_ranges(tokenize(text)) == expected
