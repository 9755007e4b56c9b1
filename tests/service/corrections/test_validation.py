"""Corrections checked before they are stored: tag set, length, scheme, tokens, offsets; errors name the token."""

from __future__ import annotations

import pytest

from service.corrections.errors import InvalidCorrection
from service.corrections.records import Correction
from service.corrections.validation import TagRules

NER = TagRules(("B-ORG", "B-PER", "I-ORG", "I-PER", "O"), "IOB2", max_tokens=4)
UPOS = TagRules(("NOUN", "VERB"), None, max_tokens=4)


def check(rules: TagRules, tokens: str, tags: str, **given: object) -> None:
    rules.check(Correction("m", tuple(tokens.split()), tuple(tags.split()), **given))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tokens", "tags", "message", "index", "tag"),
    [
        ("a b", "O B-LOC", "not one of the model's tags", 1, "B-LOC"),
        ("a b", "I-PER I-PER", "cannot open a sentence in IOB2 .an entity opens with B-PER", 0, "I-PER"),
        ("a b c", "B-PER I-ORG O", "cannot follow 'B-PER' in IOB2", 1, "I-ORG"),
        ("a b c d e", "O O O O O", "5 tokens; at most 4", None, None),
        ("a b", "O", "one tag per token: 2 tokens, 1 tags", None, None),
    ],
)
def test_a_bad_correction_names_what_to_fix(
    tokens: str, tags: str, message: str, index: int | None, tag: str | None
) -> None:
    with pytest.raises(InvalidCorrection, match=message) as caught:
        check(NER, tokens, tags)
    assert (caught.value.index, caught.value.tag) == (index, tag)


def test_valid_corrections_pass() -> None:
    check(NER, "Ada of IBM", "B-PER O B-ORG")
    check(NER, "Ada Lovelace IBM", "B-PER I-PER B-ORG")
    check(UPOS, "dogs bark", "NOUN VERB")
    check(UPOS, "dogs bark", "VERB VERB")  # plain tags: any order


def test_tokens_must_survive_the_export_formats() -> None:
    for token in ("a\tb", "a\nb", " a", ""):
        with pytest.raises(InvalidCorrection, match="token 1"):
            NER.check(Correction("m", ("ok", token), ("O", "O")))


def test_offsets_need_text_and_fit_it() -> None:
    NER.check(Correction("m", ("Hi", "Ada"), ("O", "B-PER"), text="Hi Ada", offsets=((0, 2), (3, 6))))
    with pytest.raises(InvalidCorrection, match="need the text"):
        NER.check(Correction("m", ("Hi",), ("O",), offsets=((0, 2),)))
    with pytest.raises(InvalidCorrection, match=r"token 1: offsets .3, 9. are out of order or outside"):
        NER.check(Correction("m", ("Hi", "Ada"), ("O", "B-PER"), text="Hi Ada", offsets=((0, 2), (3, 9))))


def test_served_tags_must_match_the_tokens() -> None:
    with pytest.raises(InvalidCorrection, match="one served tag per token"):
        NER.check(Correction("m", ("Ada",), ("B-PER",), served_tags=("O", "O")))
