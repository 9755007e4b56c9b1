"""CoNLL-U documents kept whole: parsing finds the words to tag, filling changes only the tag column."""

from __future__ import annotations

import sys

import pytest

from tagger.conllu import ConlluError, TaggedText, fill, parse, sentences_document


def row(*fields: str) -> str:
    """A word line: the given leading columns, the rest `_`."""
    return "\t".join([*fields, *["_"] * (10 - len(fields))])


DOCUMENT = "\n".join(
    [
        "# newdoc id = d1",
        "# sent_id = s1",
        "# text = I can't go.",
        row("1", "I", "I", "PRON"),
        row("2-3", "can't"),
        row("2", "ca", "can", "AUX", "MD", "_", "4", "aux", "_", "SpaceAfter=No"),
        row("3", "n't", "not", "PART"),
        row("3.1", "go"),
        row("4", "go", "go", "VERB", "_", "_", "0", "root", "_", "NER=B-X|SpaceAfter=No"),
        row("5", "."),
        "",
        "# sent_id = s2",
        row("1", "Hi"),
        "",
    ]
)


def test_parse_finds_the_words_and_skips_ranges_and_empty_nodes() -> None:
    document = parse(DOCUMENT)
    first, second = document.sentences
    assert first.forms == ("I", "ca", "n't", "go", ".") and first.first_line == 4
    assert second.forms == ("Hi",) and second.first_line == 13


def test_fill_changes_only_the_tag_column() -> None:
    document = parse(DOCUMENT)
    upos = fill(document, [["A", "B", "C", "D", "E"], ["F"]], spans=False).split("\n")
    before = DOCUMENT.split("\n")
    assert len(upos) == len(before)
    for new, old in zip(upos, before, strict=True):
        if new.split("\t")[0].isdigit():
            assert new.split("\t")[:3] + new.split("\t")[4:] == old.split("\t")[:3] + old.split("\t")[4:]
        else:
            assert new == old  # comments, ranges, empty nodes and blank lines as they came
    assert [line.split("\t")[3] for line in upos if line.split("\t")[0].isdigit()] == list("ABCDEF")


def test_fill_with_span_tags_writes_ner_in_misc_and_keeps_its_other_entries() -> None:
    tags = [["O", "O", "O", "B-LOC", "O"], ["B-PER"]]
    lines = fill(parse(DOCUMENT), tags, spans=True).split("\n")
    assert lines[5].endswith("\tSpaceAfter=No|NER=O")
    assert lines[8].endswith("\tNER=B-LOC|SpaceAfter=No")  # the old NER=B-X replaced where it stood
    assert lines[12].endswith("\tNER=B-PER") and lines[12].split("\t")[3] == "_"


def test_windows_line_endings_come_back_as_they_came() -> None:
    crlf = DOCUMENT.replace("\n", "\r\n")
    out = fill(parse(crlf), [["X"] * 5, ["Y"]], spans=False)
    assert out.count("\r\n") == crlf.count("\r\n") and "\n" not in out.replace("\r\n", "")


@pytest.mark.parametrize(
    ("document", "line", "words"),
    [
        ("1\tHi\t_\n", 1, "10 tab-separated columns"),
        (row("1", "Hi") + "\n" + row("3", "x") + "\n", 2, "word ID 3 where 2 was expected"),
        (row("1", "Hi") + "\n" + row("one", "x") + "\n", 2, "not a word number"),
        ("# only a comment\n\n", 2, "no word lines"),
        ("# c\n" + row("1-2", "can't") + "\n\n" + row("1", "x") + "\n", 2, "no words to tag"),
        (row("1", " ") + "\n", 1, "FORM (column 2) is empty"),
        (row("1", "a") + "\n\n\n" + row("2", "b") + "\n", 4, "word ID 2 where 1 was expected"),
    ],
)
def test_a_broken_document_is_refused_with_its_line(document: str, line: int, words: str) -> None:
    with pytest.raises(ConlluError) as caught:
        parse(document)
    assert caught.value.line == line and words in str(caught.value)


def test_a_document_from_tokens_has_sent_id_text_and_space_after() -> None:
    text = "Hi, Bob.\tYes"
    items = [
        TaggedText(["Hi", ",", "Bob", ".", "Yes"], ["X"] * 5, text, [(0, 2), (2, 3), (4, 7), (7, 8), (9, 12)]),
        TaggedText([], [], "   ", []),
        TaggedText(["a\tb"], ["Y"]),
    ]
    out = sentences_document(items, spans=False)
    document = parse(out)
    assert [s.forms for s in document.sentences] == [("Hi", ",", "Bob", ".", "Yes"), ("a b",)]
    assert "# sent_id = 1\n# text = Hi, Bob. Yes\n" in out and "# sent_id = 3\n# text = a b\n" in out
    misc = [line.split("\t")[9] for line in out.splitlines() if line[:1].isdigit()]
    assert misc == ["SpaceAfter=No", "_", "SpaceAfter=No", "_", "_", "_"]


# what str.splitlines breaks a line at, beside LF and CR: VT, FF, FS, GS, RS, NEL, U+2028, U+2029
OTHER_BREAKS = [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1 and chr(c) not in "\r\n"]


def test_the_other_line_breaks_are_the_ones_python_knows() -> None:
    assert OTHER_BREAKS == ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize(
    "digits",
    [9, 10, 4300, 4301, 5000, 100_000],
    ids=lambda n: f"{n}-digits",
)
def test_a_word_id_that_is_not_a_small_number_is_refused_naming_its_line(digits: int) -> None:
    huge = "1" + "0" * (digits - 1)
    document = row("1", "a") + "\n" + row(huge, "b") + "\n\n"
    if digits == 9:  # the largest accepted: refused only for not counting on
        with pytest.raises(ConlluError, match="word ID 100000000 where 2 was expected"):
            parse(document)
        return
    assert sys.get_int_max_str_digits() in (0, 4300)  # the limit the 4,301-digit case once hit
    with pytest.raises(ConlluError) as caught:
        parse(document)
    assert caught.value.line == 2 and "is not a word number" in caught.value.reason
    assert len(caught.value.reason) < 200  # a long ID is quoted cut short, with its length
    assert digits < 100 or f"({digits} characters)" in caught.value.reason


@pytest.mark.parametrize("ident", ["1-" + "9" * 4301, "9" * 4301 + ".1", "1." + "9" * 4301, "01", "1.0", "0-1"])
def test_a_range_or_empty_node_id_must_be_small_numbers_too(ident: str) -> None:
    with pytest.raises(ConlluError, match="is not a word number") as caught:
        parse(row("1", "a") + "\n" + row(ident, "b") + "\n" + row("2", "b") + "\n")
    assert caught.value.line == 2


def test_a_bare_lf_inside_a_field_of_a_crlf_document_is_refused() -> None:
    document = "# text = A B\r\n" + row("1", "A\nB") + "\r\n\r\n"
    with pytest.raises(ConlluError, match="10 tab-separated columns") as caught:
        parse(document)
    assert caught.value.line == 2  # the LF ends line 2 there, as every universal-newline reader sees it
    with pytest.raises(ConlluError, match="10 tab-separated columns"):
        parse(row("1", "A\rB") + "\n")  # a bare CR in an LF document: the same


def test_mixed_line_endings_read_as_lines_and_come_back_in_the_first_lines_ending() -> None:
    document = DOCUMENT.replace("\n", "\r\n", 4)
    assert [s.forms for s in parse(document).sentences] == [s.forms for s in parse(DOCUMENT).sentences]
    out = fill(parse(document), [["X"] * 5, ["Y"]], spans=False)
    assert out.count("\r\n") == DOCUMENT.count("\n") and "\n" not in out.replace("\r\n", "")


@pytest.mark.parametrize("char", OTHER_BREAKS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["form", "misc", "comment"])
def test_any_other_line_break_in_the_input_is_refused_naming_its_line(char: str, where: str) -> None:
    lines = ["# sent_id = 1", "# text = a b", row("1", "a"), row("2", "b"), ""]
    if where == "form":
        lines[3] = row("2", f"b{char}c")
    elif where == "misc":
        lines[3] = row("2", "b", *["_"] * 7, f"SpaceAfter=No{char}")
    else:
        lines[1] = f"# text = a{char}b"
    with pytest.raises(ConlluError, match=f"U\\+{ord(char):04X} breaks a line") as caught:
        parse("\r\n".join(lines))
    assert caught.value.line == (2 if where == "comment" else 4)


@pytest.mark.parametrize("char", ["\n", "\r", "\r\n", "\t", *OTHER_BREAKS], ids=lambda c: f"U+{ord(c[0]):04X}")
def test_written_text_and_tokens_never_hold_a_line_break(char: str) -> None:
    text = f"Hi{char}there"
    items = [TaggedText(["Hi", "there"], ["O", "O"], text, [(0, 2), (2 + len(char), 7 + len(char))])]
    items.append(TaggedText([f"a{char}b", "c"], ["O", "O"]))  # pre-tokenized: `# text` is the tokens joined
    out = sentences_document(items, spans=True)
    assert out.splitlines() == out.split("\n")[:-1]  # every reader sees the same lines
    assert "# text = Hi there\n" in out and "# text = a b c\n" in out
    assert [s.forms for s in parse(out).sentences] == [("Hi", "there"), ("a b", "c")]


def test_our_own_output_round_trips_unchanged_misc_order_included() -> None:
    items = [
        TaggedText(
            ["Tim", "Cook", "'s", "Berlin", "."],
            ["B-PER", "I-PER", "O", "B-LOC", "O"],
            "Tim Cook's Berlin.",
            [(0, 3), (4, 8), (8, 10), (11, 17), (17, 18)],
        ),
        TaggedText(["Hi"], ["O"], "Hi"),
    ]
    out = sentences_document(items, spans=True)
    assert "\tNER=I-PER|SpaceAfter=No\n" in out
    document = parse(out)
    assert fill(document, [list(item.tags) for item in items], spans=True) == out
    upos = sentences_document(items, spans=False)
    assert fill(parse(upos), [list(item.tags) for item in items], spans=False) == upos


@pytest.mark.parametrize(
    ("misc", "expected"),
    [
        ("_", "NER=B-PER"),
        ("SpaceAfter=No", "SpaceAfter=No|NER=B-PER"),
        ("NER=O|SpaceAfter=No", "NER=B-PER|SpaceAfter=No"),
        ("Lang=en|NER=O|SpaceAfter=No", "Lang=en|NER=B-PER|SpaceAfter=No"),
        ("NER=O|Lang=en|NER=I-LOC", "NER=B-PER|Lang=en"),  # a second NER= goes: one word, one tag
    ],
)
def test_fill_sets_ner_where_it_stands_in_misc(misc: str, expected: str) -> None:
    document = parse(row("1", "Bob", *["_"] * 7, misc) + "\n")
    assert fill(document, [["B-PER"]], spans=True) == row("1", "Bob", *["_"] * 7, expected) + "\n"
