"""CoNLL-U documents, kept whole: read one to tag its words, write it back with only the tag column changed.

`tagger.readers.read_conllu` reads a treebank for training and drops what it
does not learn from. A document a user sends to be tagged is different: every
comment, multiword range (`3-4`), empty node (`5.1`) and column other than the
tag must come back as it came, so the document is held as its lines and only
the word lines' tag column (UPOS, or `NER=` in MISC for span tags) is rewritten.

Writing a document from tokens (`sentences_document`) is the other direction:
`# sent_id`, `# text`, one word line per token, `SpaceAfter=No` where the
offsets say two tokens touch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

COLUMNS = 10  # ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
FORM, UPOS, MISC = 1, 3, 9
_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")
_EMPTY_ID = re.compile(r"[0-9]+\.[1-9][0-9]*")


class ConlluError(ValueError):
    """A document that is not CoNLL-U, with the 1-based line where it goes wrong."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class ConlluSentence:
    """One sentence of a document: the indexes (into `Document.lines`) of its word lines, and their forms."""

    first_line: int  # 1-based number of its first word, range or empty-node line
    words: tuple[int, ...]
    forms: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    """A CoNLL-U document as its lines (line endings removed), with where its sentences' words are."""

    lines: tuple[str, ...]
    sentences: tuple[ConlluSentence, ...]
    newline: str  # "\n" or "\r\n", as the document used


def parse(text: str) -> Document:
    """Read a CoNLL-U document; raise `ConlluError` naming the line of the first problem.

    "# text = Hi .\\n1\\tHi\\t...\\n2\\t.\\t...\\n\\n" -> one sentence, words at lines[1] and lines[2].
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(newline)
    if lines and lines[-1] == "":
        lines.pop()  # the document's final line ending
    sentences: list[ConlluSentence] = []
    words: list[int] = []
    first = 0
    expected = 1
    for index, line in enumerate(lines):
        number = index + 1
        if not line.strip():
            if first:
                sentences.append(_sentence(lines, first, words))
            words, first, expected = [], 0, 1
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != COLUMNS:
            raise ConlluError(
                number, f"a word line has {COLUMNS} tab-separated columns (ID FORM ... MISC), this one {len(fields)}"
            )
        first = first or number
        ident = fields[0]
        if _RANGE_ID.fullmatch(ident) or _EMPTY_ID.fullmatch(ident):
            continue  # kept as it is, not tagged
        if not _WORD_ID.fullmatch(ident):
            raise ConlluError(number, f"ID {ident!r} is not a word number (1), a range (1-2) or an empty node (1.1)")
        if int(ident) != expected:
            raise ConlluError(number, f"word ID {ident} where {expected} was expected (IDs count 1, 2, 3 ...)")
        if not fields[FORM].strip():
            raise ConlluError(number, "FORM (column 2) is empty")
        words.append(index)
        expected += 1
    if first:
        sentences.append(_sentence(lines, first, words))
    if not sentences:
        raise ConlluError(max(1, len(lines)), "the document has no word lines (ID<TAB>FORM<TAB>... with 10 columns)")
    return Document(tuple(lines), tuple(sentences), newline)


def _sentence(lines: list[str], first: int, words: list[int]) -> ConlluSentence:
    if not words:
        raise ConlluError(first, "this sentence has ranges or empty nodes but no words to tag")
    return ConlluSentence(first, tuple(words), tuple(lines[i].split("\t")[FORM] for i in words))


def fill(document: Document, tags: Sequence[Sequence[str]], spans: bool) -> str:
    """The document with each word's tag written in: UPOS, or for span tags `NER=<tag>` in MISC.

    Any `NER=` already in MISC is replaced; MISC's other entries keep their order.
    """
    lines = list(document.lines)
    for sentence, sentence_tags in zip(document.sentences, tags, strict=True):
        for index, tag in zip(sentence.words, sentence_tags, strict=True):
            fields = lines[index].split("\t")
            if spans:
                fields[MISC] = _with_ner(fields[MISC], tag)
            else:
                fields[UPOS] = tag
            lines[index] = "\t".join(fields)
    return "".join(line + document.newline for line in lines)


def _with_ner(misc: str, tag: str) -> str:
    kept = [entry for entry in misc.split("|") if entry and entry != "_" and not entry.startswith("NER=")]
    return "|".join([*kept, f"NER={tag}"])


@dataclass(frozen=True)
class TaggedText:
    """One tagged input to write: tokens and tags, with the text and offsets when it was raw text."""

    tokens: Sequence[str]
    tags: Sequence[str]
    text: str | None = None
    offsets: Sequence[tuple[int, int]] | None = None


def sentences_document(items: Iterable[TaggedText], spans: bool) -> str:
    """A CoNLL-U document of tagged inputs: the tag in UPOS, or (span tags) `NER=` in MISC.

    `# text` is the input text, or for pre-tokenized input its tokens joined by
    spaces (so no `SpaceAfter=No`); an input with no tokens (a blank text) is
    left out, as CoNLL-U has no empty sentences, but keeps its `sent_id` number.
    """
    return "".join(_sentence_lines(item, index, spans) for index, item in enumerate(items, start=1) if item.tokens)


def _sentence_lines(item: TaggedText, index: int, spans: bool) -> str:
    text = item.text if item.text is not None else " ".join(item.tokens)
    lines = [f"# sent_id = {index}", f"# text = {_one_line(text)}"]
    offsets = item.offsets
    for i, (token, tag) in enumerate(zip(item.tokens, item.tags, strict=True)):
        misc = [f"NER={tag}"] if spans else []
        if offsets is not None and i + 1 < len(offsets) and offsets[i][1] == offsets[i + 1][0]:
            misc.append("SpaceAfter=No")
        upos = "_" if spans else tag
        columns = [str(i + 1), _one_line(token), "_", upos, "_", "_", "_", "_", "_", "|".join(misc) or "_"]
        lines.append("\t".join(columns))
    return "\n".join(lines) + "\n\n"


def _one_line(text: str) -> str:
    """A comment or a column holds one line: line breaks and tabs become spaces."""
    return " ".join(text.split()) if any(c in text for c in "\n\r\t") else text
