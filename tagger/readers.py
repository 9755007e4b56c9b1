"""Read corpora into `Sentence`s (CoNLL-U, column files, UNER IOB2, tokenized text) and write them back.

Files are read whole and decoded as strict UTF-8, so a bad byte is reported
with its line instead of surfacing later as mojibake. Real files carry stray
byte-order marks (WNUT-17 dev ends with one on its own line and has another
glued to a token), so U+FEFF is dropped wherever it occurs: a line holding
nothing else counts as blank. Lines end at LF, CRLF or CR. Any line that does
not fit its format raises `DataFormatError` naming file:line; nothing is
skipped silently except what the format defines as skippable (comments,
multiword ranges, empty nodes, `-DOCSTART-`).

Comment lines (`# sent_id = ...`, `# text = ...`, `# newdoc ...`) are read as
such in every format, wherever they stand. In a column file a token can be
`#` itself (WNUT-17 has `#<TAB>O`), so there a `#` line is a comment only
when it does not have the shape of a token line: no tab in a tab-separated
file, or a `key = value` comment, or another width than the token lines.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from tagger.conllu import LINE_END, ConlluError, parse
from tagger.schemes import Scheme, convert, detect_scheme, is_span_tagset

Format = Literal["auto", "conllu", "conll", "uner", "tokens"]
FORMATS: tuple[Format, ...] = ("auto", "conllu", "conll", "uner", "tokens")
TagField = Literal["upos", "xpos"]

_BOM = "\ufeff"
_CONLLU_ID = re.compile(r"[0-9]+(?:-[0-9]+|\.[0-9]+)?")
_TAG_COLUMNS = {"upos": 3, "xpos": 4}
_SNIFF_LINES = 1000
_KEY_VALUE_COMMENT = re.compile(r"#\s*[\w.-]+\s*=|#\s*(?:newdoc|newpar)\b")
_UNER_TOKEN, _UNER_TAG = 1, 2  # UNER IOB2: index, token, tag, then annotator columns


@dataclass(frozen=True)
class Sentence:
    """One sentence: its tokens and, when the source has them, one tag per token."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...] = ()  # empty when the file carries no tags

    def __post_init__(self) -> None:
        if self.tags and len(self.tags) != len(self.tokens):
            raise ValueError(f"expected {len(self.tokens)} tags (one per token) or none, got {len(self.tags)}")


class DataFormatError(ValueError):
    """A corpus file does not match its format; the message starts with `file:line:`."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line


def _text(path: str | Path) -> str:
    """A file's text, decoded as strict UTF-8 (a bad byte is reported at its line), with every U+FEFF dropped."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        bad_line = len(re.split(rb"\r\n|\r|\n", data[: err.start]))
        bad = f"byte 0x{data[err.start]:02x} at byte offset {err.start}"
        raise DataFormatError(path, bad_line, f"not valid UTF-8 ({bad}); re-encode the file as UTF-8") from None
    return text.replace(_BOM, "")


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its line end and without U+FEFF)."""
    yield from enumerate(LINE_END.split(_text(path)), start=1)


def _flush(sentences: list[Sentence], tokens: list[str], tags: list[str]) -> None:
    """Close the sentence being collected, if any, and start a new one."""
    if tokens:
        sentences.append(Sentence(tuple(tokens), tuple(tags)))
    tokens.clear()
    tags.clear()


def read_conllu(path: str | Path, tag_field: TagField = "upos") -> list[Sentence]:
    """Read a CoNLL-U file, tagging each word with its UPOS (column 4) or XPOS (column 5).

    The file is read by `tagger.conllu.parse`, the parser the service uses, and
    its errors are reported as `file:line: ...`. Comments, multiword-token
    ranges (`1-2`) and empty nodes (`8.1`) are skipped: only syntactic words
    are tagged. IDs must count up from 1 in each sentence, which catches a
    missing blank line between sentences; a FORM may not be empty.
    """
    if tag_field not in _TAG_COLUMNS:
        raise ValueError(f"tag_field must be 'upos' or 'xpos', got {tag_field!r}")
    column = _TAG_COLUMNS[tag_field]
    try:
        document = parse(_text(path), allow_empty=True)
    except ConlluError as err:
        raise DataFormatError(path, err.line, err.reason) from None
    sentences = []
    for sentence in document.sentences:
        tags = tuple(document.lines[index].split("\t", column + 1)[column] for index in sentence.words)
        for index, tag in zip(sentence.words, tags, strict=True):
            if tag in ("", "_"):
                hint = f"does the file have {tag_field} tags?"
                message = f"expected a {tag_field.upper()} tag in column {column + 1}, found {tag!r} ({hint})"
                raise DataFormatError(path, index + 1, message)
        sentences.append(Sentence(sentence.forms, tags))
    return sentences


def _split_columns(line: str) -> list[str]:
    """Columns of a line: tab-separated if it has a tab, else whitespace-separated; [] for a blank line."""
    if "\t" not in line:
        return line.split()
    fields = [field.strip() for field in line.split("\t")]
    return fields if any(fields) else []


def _column_indexes(path: str | Path, number: int, width: int, token_column: int, tag_column: int) -> tuple[int, int]:
    """Resolve possibly negative column numbers against a line of `width` columns."""
    token_index = token_column if token_column >= 0 else width + token_column
    tag_index = tag_column if tag_column >= 0 else width + tag_column
    if not (0 <= token_index < width and 0 <= tag_index < width) or token_index == tag_index:
        needed = max(2, *(c + 1 if c >= 0 else -c for c in (token_column, tag_column)))
        hint = " (is the tag column missing?)" if width == 1 else ""
        raise DataFormatError(
            path,
            number,
            f"expected at least {needed} columns for token_column={token_column} and tag_column={tag_column}, "
            f"found {width}{hint}",
        )
    return token_index, tag_index


def read_columns(path: str | Path, token_column: int = 0, tag_column: int = -1) -> list[Sentence]:
    """Read a column file (CoNLL-2003, WikiANN, WNUT-17): one token per line, blank line between sentences.

    Lines split on tabs if they contain one, else on runs of whitespace. Column
    numbers count from 0; negative ones from the end (default: first and last).
    `-DOCSTART-` lines separate documents and `#` comment lines are skipped.
    Every token line must have as many columns as the first one, so a line
    missing its tag fails here.
    """
    return _read_columns(path, token_column, tag_column, indexed=False)


def read_uner(path: str | Path) -> list[Sentence]:
    """Read a Universal NER IOB2 file: `#` comments, then `index<TAB>token<TAB>tag<TAB>...` lines.

    The index must count up from 1 in each sentence, which catches a missing
    blank line between sentences. The annotator columns may be missing (the
    first public release of English-EWT train leaves them off most lines), so
    a line needs 3 columns or more rather than as many as the first.
    """
    return _read_columns(path, _UNER_TOKEN, _UNER_TAG, indexed=True)


def _read_columns(path: str | Path, token_column: int, tag_column: int, *, indexed: bool) -> list[Sentence]:
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    width, width_line, token_index, tag_index = 0, 0, 0, 0
    tabbed: bool | None = None  # whether token lines are tab-separated, from the first one
    for number, line in _lines(path):
        fields = _split_columns(line)
        if not fields or fields[0] == "-DOCSTART-":
            _flush(sentences, tokens, tags)
            continue
        if line.startswith("#") and _comment(line, fields, width, tabbed):
            continue
        if not width:
            width, width_line, tabbed = len(fields), number, "\t" in line
            token_index, tag_index = _column_indexes(path, number, width, token_column, tag_column)
        elif indexed and len(fields) <= max(token_index, tag_index):
            needed, found = max(token_index, tag_index) + 1, len(fields)
            message = f"expected at least {needed} columns (index, token, tag), found {found}"
            raise DataFormatError(path, number, message)
        elif len(fields) != width and not indexed:
            found = len(fields)
            raise DataFormatError(path, number, f"expected {width} columns as on line {width_line}, found {found}")
        if not all(fields):
            empty = fields.index("") + 1
            raise DataFormatError(path, number, f"expected {width} non-empty columns, found column {empty} empty")
        if indexed and fields[0] != str(len(tokens) + 1):
            hint = "is a blank line missing between sentences?"
            raise DataFormatError(
                path, number, f"expected token index {len(tokens) + 1} in column 1, found {fields[0]!r} ({hint})"
            )
        tokens.append(fields[token_index])
        tags.append(fields[tag_index])
    _flush(sentences, tokens, tags)
    return sentences


def _comment(line: str, fields: list[str], width: int, tabbed: bool | None) -> bool:
    """Whether a line starting with `#` is a comment rather than a token line for the token `#...`.

    Example: `# text = Hi`, `# newdoc` -> comment; `#<TAB>O` and `#rock=on<TAB>O` in a tab-separated file ->
    tokens.
    """
    if "\t" in line:
        return False  # split on tabs, so it is a token line (comments hold no tabs)
    if tabbed is not False:
        return True  # token lines hold tabs (or none was read yet, and a comment holds none)
    if _KEY_VALUE_COMMENT.match(line):
        return True
    return bool(width) and len(fields) != width


def read_tokens(path: str | Path) -> list[Sentence]:
    """Read tokenized text: one sentence per line, tokens separated by whitespace, no tags."""
    return [Sentence(tuple(line.split())) for _, line in _lines(path) if line.strip()]


def _sniff(path: str | Path) -> Literal["conllu", "conll", "uner", "tokens"]:
    """Guess a file's format; the rule is spelled out in `read_corpus`."""
    suffix = Path(path).suffix.lower()
    if suffix == ".conllu":
        return "conllu"
    if suffix == ".tok":
        return "tokens"
    window = [line for _, line in itertools.islice(_lines(path), _SNIFF_LINES)]
    content = [i for i, line in enumerate(window) if line.strip() and not line.startswith("#")]
    if not content:
        return "tokens"
    first = window[content[0]]
    if "\t" in first:
        fields = first.split("\t")
        if len(fields) == 10 and _CONLLU_ID.fullmatch(fields[0]):
            return "conllu"
        following = window[content[1]].split("\t") if len(content) > 1 else []
        counting = not following or following[0] == "2" or not window[content[0] + 1].strip()
        return "uner" if len(fields) >= 3 and fields[0] == "1" and counting else "conll"
    rows = [window[i].split() for i in content]
    if any(row[0] == "-DOCSTART-" for row in rows):
        return "conll"
    widths = {len(row) for row in rows}
    has_blocks = any(not line.strip() for line in window[content[0] : content[-1]])
    return "conll" if has_blocks and len(widths) == 1 and widths.pop() >= 2 else "tokens"


def read_corpus(
    path: str | Path,
    fmt: Format = "auto",
    *,
    tag_field: TagField = "upos",
    token_column: int = 0,
    tag_column: int = -1,
) -> list[Sentence]:
    """Read a corpus in any supported format; an empty result is an error.

    With fmt="auto": suffix `.conllu` -> CoNLL-U; `.tok` -> tokens. Otherwise
    (`.txt` too: CoNLL-2003 copies often end in .txt) look at the first 1,000
    lines, ignoring blank and `#` lines:
    - the first line has a tab -> CoNLL-U if it has 10 columns and an integer
      (or range) first column; UNER IOB2 if it has 3 or more columns, the
      first is the index 1 and the next token line's is 2 (token column 1, tag
      column 2; columns given other than the defaults read it as a column file
      with those columns); else a column file;
    - no tab: a column file if a `-DOCSTART-` line occurs, or if every line has
      the same number (>= 2) of space-separated fields and blank lines separate
      them into blocks; anything else is tokenized text.
    A single space-separated sentence with no blank line therefore reads as
    tokens: pass fmt="conll" for it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(map(repr, FORMATS))}, got {fmt!r}")
    chosen = _sniff(path) if fmt == "auto" else fmt
    if chosen == "conllu":
        sentences = read_conllu(path, tag_field)
    elif chosen == "conll":
        sentences = read_columns(path, token_column, tag_column)
    elif chosen == "uner" and fmt == "auto" and (token_column, tag_column) not in ((0, -1), (1, 2)):
        sentences = read_columns(path, token_column, tag_column)  # sniffed as UNER, but the caller chose columns
    elif chosen == "uner":
        sentences = read_uner(path)
    else:
        sentences = read_tokens(path)
    if not sentences:
        raise DataFormatError(path, None, f"no sentences found (read as {chosen}); is the file empty?")
    return sentences


def read_tagged(
    path: str | Path,
    fmt: Format = "auto",
    *,
    tag_field: TagField = "upos",
    token_column: int = 0,
    tag_column: int = -1,
    scheme: Scheme | Literal["auto"] = "auto",
) -> list[Sentence]:
    """A gold-tagged corpus as models are trained and scored on it: span tags re-written to IOB2 from `scheme`."""
    sentences = read_corpus(path, fmt, tag_field=tag_field, token_column=token_column, tag_column=tag_column)
    return retag(sentences, scheme, "IOB2")


def write_columns(sentences: Iterable[Sentence], out: TextIO) -> None:
    """Write `token<TAB>tag` lines (just the token when untagged), a blank line after each sentence.

    Tagged output reads back unchanged with `read_columns`.
    """
    for index, sentence in enumerate(sentences):
        rows = (
            zip(sentence.tokens, sentence.tags, strict=True)
            if sentence.tags
            else ((token,) for token in sentence.tokens)
        )
        for row in rows:
            if any(not field.strip() or any(c in field for c in "\t\r\n") for field in row):
                raise ValueError(f"sentence {index}: {row!r} has an empty field or one holding a tab or line break")
            out.write("\t".join(row) + "\n")
        out.write("\n")


def retag(sentences: Sequence[Sentence], source: Scheme | Literal["auto"], target: Scheme) -> list[Sentence]:
    """The sentences with span tags re-written from `source` (or the detected scheme) to `target`.

    A corpus of plain tags (UPOS) comes back unchanged.
    """
    if not is_span_tagset(t for s in sentences for t in s.tags):
        return list(sentences)
    if source == "auto":
        source = detect_scheme(s.tags for s in sentences)
    if source == target:
        return list(sentences)
    return [Sentence(s.tokens, tuple(convert(s.tags, source, target))) for s in sentences]
