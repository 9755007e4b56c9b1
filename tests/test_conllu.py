"""CoNLL-U documents kept whole: parsing finds the words to tag, filling changes only the tag column."""

from __future__ import annotations

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
    assert lines[8].endswith("\tSpaceAfter=No|NER=B-LOC")  # the old NER=B-X replaced, in MISC's order
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
