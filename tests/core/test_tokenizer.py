"""Tokenizer: worked examples of each EWT convention, invariants for any string, and agreement with gold EWT."""

from __future__ import annotations

import itertools
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagger.readers import read_conllu
from tagger.tokenizer import _INVISIBLE as INVISIBLE
from tagger.tokenizer import Token, tokenize

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EWT = DATA / "ud-english-ewt"
needs_ewt = pytest.mark.skipif(not EWT.is_dir(), reason=f"UD English EWT not found at {EWT} (data sets live there)")


def words(text: str) -> str:
    """The tokens of `text`, joined by single spaces, so expectations read like EWT's own token lists."""
    return " ".join(token.text for token in tokenize(text))


# --- worked examples --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The cat didn't sit.", "The cat did n't sit ."),
        ("can't won't ain't", "ca n't wo n't ai n't"),
        (
            "I'm sure we're done, they've left, you'll see, he'd know",
            "I 'm sure we 're done , they 've left , you 'll see , he 'd know",
        ),
        ("Bush's plan", "Bush 's plan"),
        ("DON'T SHOUT", "DO N'T SHOUT"),
        ("I’m sure it doesn’t", "I ’m sure it does n’t"),
        ("I'd've known", "I 'd 've known"),
        ("the 80's", "the 80's"),  # EWT keeps a number's 's
        ("the students' books", "the students ' books"),
        ("the U.S.'s role in @bob's post", "the U.S. 's role in @bob 's post"),
        ("I cannot go", "I can not go"),
        ("gonna wanna gotta", "gon na wan na got ta"),
        ("dont im cant", "do nt i m ca nt"),  # the same clitics without the apostrophe
        ("a lot, alot", "a lot , a lot"),
        ("its tail", "its tail"),  # usually the possessive: left alone
        ("Sha'lan o'clock", "Sha'lan o'clock"),  # not a clitic
    ],
)
def test_clitics_are_split_off(text: str, expected: str) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a 15-year term", "a 15 - year term"),
        ("a well-known fact", "a well - known fact"),
        ("an e-mail about non-profit re-election", "an e-mail about non-profit re-election"),
        ("the mid-1980s", "the mid-1980s"),
        ("Lashkar-e-Toiba", "Lashkar - e - Toiba"),  # `e-` is a prefix only at the start
        ("call 713-853-3989 or 345-9945", "call 713-853-3989 or 345-9945"),
        ("ZIP 94720-1900", "ZIP 94720-1900"),
        ("on 01-Feb-02", "on 01-Feb-02"),
        ("pages 10-12", "pages 10 - 12"),
        ("and/or he/she", "and / or he / she"),
        ("w/o an l/c", "w/o an l/c"),
        ("on 9/11 and 11/28/2000", "on 9/11 and 11/28/2000"),
    ],
)
def test_hyphens_and_slashes_split_compounds_but_not_prefixes_or_numbers(text: str, expected: str) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pi is 3.14, not 1,000", "pi is 3.14 , not 1,000"),
        ("$5 or 50% at 10:30", "$ 5 or 50 % at 10:30"),
        ("at 5pm, 35mm film", "at 5 pm , 35 mm film"),
        ("the 1st of the 1990s", "the 1st of the 1990s"),
        ("in '72 we", "in '72 we"),
        ("7,5 or 11,2000", "7,5 or 11 , 2000"),  # a comma joins at most three digits
        ("+44 20", "+44 20"),
    ],
)
def test_numbers(text: str, expected: str) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith of the U.S. Army, e.g. at 5 a.m. on Sept. 11",
            "Dr. Smith of the U.S. Army , e.g. at 5 a.m. on Sept. 11",
        ),
        ("Jennifer M. Anderson", "Jennifer M. Anderson"),
        ("No. 5 said no. Fine", "No. 5 said no . Fine"),
        ("I live in the U.S.", "I live in the U.S ."),  # EWT splits the period off an abbreviation ending the text
        ("apples, pears etc.", "apples , pears etc ."),
        ("etc.) and", "etc. ) and"),
        ("Smith Inc..", "Smith Inc. ."),
        ("and so on etc...", "and so on etc ..."),
    ],
)
def test_abbreviations_keep_their_period(text: str, expected: str) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('He said "no" (twice) [sic] {ok}; fine: yes!', 'He said " no " ( twice ) [ sic ] { ok } ; fine : yes !'),
        ("“Hi,” she said ‘twice’", "“ Hi , ” she said ‘ twice ’"),
        ("Wait... what?! Really??", "Wait ... what ?! Really ??"),
        ("yes--no -- maybe", "yes -- no -- maybe"),
        ("''quoted''", "'' quoted ''"),
        (
            "See http://example.com/a?b=1&c=2. Or www.example.com.",
            "See http://example.com/a?b=1&c=2 . Or www.example.com .",
        ),
        ("Mail bob.smith@enron.com, or galleryfurniture.com", "Mail bob.smith@enron.com , or galleryfurniture.com"),
        ("hi @bob #nlp #1", "hi @bob #nlp # 1"),
        ("nice :) bad :-( ok;) fun:P", "nice :) bad :-( ok ;) fun :P"),
        ("see <<draft).doc>>", "see << draft ) .doc >>"),
        ("PG&E and AT&T", "PG&E and AT&T"),
    ],
)
def test_punctuation_stands_apart_except_in_urls_emails_and_emoticons(text: str, expected: str) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("\n\t\u00a0\u2003\u3000\u2028", ""),
        ("a\u00a0b\nc\u2028d", "a b c d"),  # non-breaking space, newline, line separator
        ("tab\tand\r\nCRLF", "tab and CRLF"),
        ("\x00\x01bell\x07", "bell"),  # control characters are never tokens (issue 30 item 11)
        ("I ❤️ NY 😀😀 👍🏽 👨‍👩‍👧 🇺🇸!", "I ❤️ NY 😀😀 👍🏽 👨‍👩‍👧 🇺🇸 !"),  # emoji sequences stay whole
        ("東京に行った。", "東京に行った 。"),
        ("café naïve", "café naïve"),  # combining accents stay in the word
        ("İ'm", "İ 'm"),  # lower-casing İ gives two characters
        ("\ud800", "\ud800"),  # a lone surrogate, as a JSON body may carry
    ],
)
def test_any_string_is_tokenized_without_raising(text: str, expected: str) -> None:
    assert words(text) == expected


def test_offsets_point_back_into_the_text() -> None:
    text = "  Don't\u00a0stop,\nDr. Who!"
    assert tokenize(text) == [
        Token("Do", 2, 4),
        Token("n't", 4, 7),
        Token("stop", 8, 12),
        Token(",", 12, 13),
        Token("Dr.", 14, 17),
        Token("Who", 18, 21),
        Token("!", 21, 22),
    ]


def test_tokens_are_frozen() -> None:
    token = tokenize("hi")[0]
    with pytest.raises(FrozenInstanceError):
        token.start = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "unit",
    [
        "The U.S. didn't sell 1,000 e-mails to bob@x.com :) at 10:30... ",  # ordinary text
        "a-",  # one 200,000-character hyphenated word
        "e-",  # ... whose every link is a prefix
        "a.",  # one long abbreviation
        "1,",  # one long number
        "x@",  # many almost-emails
        "'s",  # clitics without a host
        "www.",  # one long URL
        ":(",  # emoticons
    ],
)
def test_long_input_takes_linear_time(unit: str) -> None:
    text = (unit * (200_000 // len(unit) + 1))[:200_000]
    tokens = tokenize(text)  # quadratic backtracking would make this hang
    assert "".join(token.text for token in tokens) == "".join(text.split())


# --- invariants for any string ----------------------------------------------

tricky_text = st.text(
    alphabet=st.sampled_from(list("aAeIns t'’`-/.,:;!?()@#$%&1290_\u00a0\n\u0301😀İ\u200b\u200d\u00ad\x00\ufeff")),
    max_size=60,
)


@given(st.one_of(st.text(max_size=80), tricky_text))
def test_tokens_cover_every_visible_character_exactly_once(text: str) -> None:
    tokens = tokenize(text)
    covered = [0] * len(text)
    for token in tokens:
        assert token.text
        assert text[token.start : token.end] == token.text
        assert not any(c.isspace() for c in token.text)
        for i in range(token.start, token.end):
            covered[i] += 1
    assert all(a.end <= b.start for a, b in itertools.pairwise(tokens))  # in order, not overlapping
    # control and format characters are dropped or attached, never tokens of their own
    assert covered == [0 if c.isspace() else 1 if not INVISIBLE.match(c) else covered[i] for i, c in enumerate(text)]
    assert all(not INVISIBLE.match(token.text[0]) for token in tokens)


# --- agreement with gold EWT ------------------------------------------------


def surface_texts(path: Path) -> list[str]:
    """The `# text = ...` comment of every sentence, in file order."""
    with path.open(encoding="utf-8") as lines:
        return [line[len("# text = ") :].rstrip("\r\n") for line in lines if line.startswith("# text = ")]


def gold_spans(text: str, forms: tuple[str, ...]) -> list[tuple[int, int]] | None:
    """Find each word form in `text` left to right, skipping whitespace; None if one is not there.

    `forms=("did", "n't")`, `text="didn't"` -> [(0, 3), (3, 6)]
    """
    spans, i = [], 0
    for form in forms:
        while i < len(text) and text[i].isspace():
            i += 1
        if not text.startswith(form, i):
            return None
        spans.append((i, i + len(form)))
        i += len(form)
    return spans


@pytest.mark.data
@needs_ewt
@pytest.mark.parametrize(("split", "min_exact", "min_f1"), [("dev", 0.94, 0.99), ("test", 0.94, 0.99)])
def test_agrees_with_gold_ewt_tokenization(split: str, min_exact: float, min_f1: float) -> None:
    path = EWT / f"en_ewt-ud-{split}.conllu"
    sentences, texts = read_conllu(path), surface_texts(path)
    assert len(texts) == len(sentences), "every sentence should have one # text comment"
    exact = skipped = matched = n_gold = n_predicted = 0
    for sentence, text in zip(sentences, texts, strict=True):
        gold = gold_spans(text, sentence.tokens)  # syntactic words: `didn't` -> did n't
        if gold is None:
            skipped += 1
            continue
        predicted = {(token.start, token.end) for token in tokenize(text)}
        exact += predicted == set(gold)
        matched += len(predicted & set(gold))
        n_gold += len(gold)
        n_predicted += len(predicted)
    scored = len(sentences) - skipped
    precision, recall = matched / n_predicted, matched / n_gold
    f1 = 2 * precision * recall / (precision + recall)
    print(
        f"\nEWT {split}: {scored} sentences scored ({skipped} skipped: a word form not in # text); "
        f"exact {exact / scored:.2%}; tokens P {precision:.2%} R {recall:.2%} F1 {f1:.2%}"
    )
    assert skipped <= len(sentences) // 100
    assert exact / scored >= min_exact
    assert f1 >= min_f1
