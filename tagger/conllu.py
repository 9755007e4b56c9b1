"""CoNLL-U documents, kept whole: read one to tag its words, write it back with only the tag column changed.

This is the project's one CoNLL-U parser. A document a user sends to be
tagged must come back as it came: every comment, multiword range (`3-4`),
empty node (`5.1`) and column other than the tag, so the document is held as
its lines and only the word lines' tag column (UPOS, or `NER=` in MISC for
span tags) is rewritten. `tagger.readers.read_conllu` reads a treebank for
training through the same `parse` and keeps only the words and their tags.

Lines end at LF, CRLF or a lone CR, as Python's universal newlines (and so
the UD tools) read them; a line may hold none of the other characters
`str.splitlines` breaks at (U+2028, U+0085, form feed ...), so no reader sees
a field cut in two. A document written back uses one line ending throughout:
the one its first line used.

Writing a document from tokens (`sentences_document`) is the other direction:
`# sent_id`, `# text`, one word line per token, `SpaceAfter=No` where the
offsets say two tokens touch; a line break inside a text or token becomes a space.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

COLUMNS = 10  # ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
FORM, UPOS, MISC = 1, 3, 9
LINE_END = re.compile(r"\r\n|\r|\n")  # not str.splitlines: that also breaks at the characters below
# what else str.splitlines breaks a line at: VT, FF, FS, GS, RS, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR
_OTHER_BREAK = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_BREAK_OR_TAB = re.compile("[\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_NUMBER = r"[1-9][0-9]{0,8}"  # a small decimal: int() never meets a 4,300-digit string
_WORD_ID = re.compile(_NUMBER)
_RANGE_ID = re.compile(f"{_NUMBER}-{_NUMBER}")
_EMPTY_ID = re.compile(f"(?:0|{_NUMBER})\\.{_NUMBER}")
_SHOWN = 24  # characters of a bad ID quoted in an error


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
    newline: str  # "\n", "\r\n" or "\r": the ending of the document's first line


def parse(text: str, *, allow_empty: bool = False) -> Document:
    """Read a CoNLL-U document; raise `ConlluError` naming the line of the first problem.

    "# text = Hi .\\n1\\tHi\\t...\\n2\\t.\\t...\\n\\n" -> one sentence, words at lines[1] and lines[2].
    A document without a word line is refused, unless `allow_empty` (a corpus
    reader reports an empty file its own way).
    """
    _refuse_other_breaks(text)
    lines = LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the document's final line ending
    first_end = LINE_END.search(text)
    sentences: list[ConlluSentence] = []
    words: list[int] = []
    forms: list[str] = []
    first = 0
    for index, line in enumerate(lines):
        if not line.strip():
            if first:
                sentences.append(_sentence(first, words, forms))
            words, forms, first = [], [], 0
            continue
        if line.startswith("#"):
            continue
        first = first or index + 1
        form = _word_form(line, index + 1, len(words) + 1)
        if form is not None:
            words.append(index)
            forms.append(form)
    if first:
        sentences.append(_sentence(first, words, forms))
    if not sentences and not allow_empty:
        raise ConlluError(max(1, len(lines)), "the document has no word lines (ID<TAB>FORM<TAB>... with 10 columns)")
    return Document(tuple(lines), tuple(sentences), first_end.group() if first_end else "\n")


def _refuse_other_breaks(text: str) -> None:
    """Refuse a line break other than LF, CR or CRLF: a reader using str.splitlines would cut the line there."""
    found = _OTHER_BREAK.search(text)
    if found:
        line = len(LINE_END.findall(text, 0, found.start())) + 1
        message = (
            f"U+{ord(found.group()):04X} breaks a line for many readers, but CoNLL-U lines end only at LF (or CRLF); "
            "replace it with a space"
        )
        raise ConlluError(line, message)


def _word_form(line: str, number: int, expected: int) -> str | None:
    """Check a line that is neither blank nor a comment: the FORM of a word to tag, None for a range or empty node."""
    fields = line.split("\t")
    if len(fields) != COLUMNS:
        raise ConlluError(
            number, f"a word line has {COLUMNS} tab-separated columns (ID FORM ... MISC), this one {len(fields)}"
        )
    ident = fields[0]
    if not _WORD_ID.fullmatch(ident):
        if _RANGE_ID.fullmatch(ident) or _EMPTY_ID.fullmatch(ident):
            return None  # kept as it is, not tagged
        raise ConlluError(
            number,
            f"ID {_shown(ident)} is not a word number (1 to 999999999), a range (1-2) or an empty node (1.1)",
        )
    if int(ident) != expected:
        hint = "; is a blank line missing between sentences?" if ident == "1" else ""
        raise ConlluError(number, f"word ID {ident} where {expected} was expected (IDs count 1, 2, 3 ...{hint})")
    form = fields[FORM]
    if not form.strip():
        raise ConlluError(number, "FORM (column 2) is empty")
    return form


def _shown(ident: str) -> str:
    """An ID as an error quotes it: a long one cut short, with its length."""
    if len(ident) <= _SHOWN:
        return repr(ident)
    return f"{ident[:_SHOWN]!r}... ({len(ident)} characters)"


def _sentence(first: int, words: list[int], forms: list[str]) -> ConlluSentence:
    if not words:
        raise ConlluError(first, "this sentence has ranges or empty nodes but no words to tag")
    return ConlluSentence(first, tuple(words), tuple(forms))


def fill(document: Document, tags: Sequence[Sequence[str]], spans: bool) -> str:
    """The document with each word's tag written in: UPOS, or for span tags `NER=<tag>` in MISC.

    An `NER=` already in MISC is replaced where it stands, so MISC keeps the
    order it came in (our own `NER=B-PER|SpaceAfter=No` reads back unchanged);
    without one, `NER=` goes last.
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
    """MISC with its `NER=` entry set where it stands, or last.

    ("NER=O|SpaceAfter=No", "B-PER") -> "NER=B-PER|SpaceAfter=No"; ("_", "B-PER") -> "NER=B-PER".
    """
    entries = [entry for entry in misc.split("|") if entry and entry != "_"]
    ner = f"NER={tag}"
    at = next((i for i, entry in enumerate(entries) if entry.startswith("NER=")), len(entries))
    kept = [entry for entry in entries[at:] if not entry.startswith("NER=")]
    return "|".join([*entries[:at], ner, *kept])


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
    """A comment or a column holds one line: any line break (all str.splitlines knows) or tab becomes a space.

    "Hi\\u2028there\\r\\nyou" -> "Hi there you" (whitespace around a break collapses into one space).
    """
    return " ".join(text.split()) if _BREAK_OR_TAB.search(text) else text
