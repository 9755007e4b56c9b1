"""What `tagger predict` reads and writes: raw text through the service's tokenizer, and CoNLL-U, CoNLL or
JSON lines out.

Raw text (`--input text`): one text per line, or with `--paragraphs` one per
blank-line-separated block (its lines joined). Each text is tokenized exactly
as `POST /v1/tag {"texts": [...]}` tokenizes it, so the offline tags are the
service's tags.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tagger.conllu import TaggedText, sentences_document
from tagger.readers import Sentence, write_columns
from tagger.schemes import to_spans
from tagger.tokenizer import tokenize


@dataclass(frozen=True)
class TaggedInput:
    """One input, tagged: its tokens and tags, with the text and offsets when it was raw text."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    text: str | None = None
    offsets: tuple[tuple[int, int], ...] | None = None


def read_text(source: str, paragraphs: bool) -> list[str]:
    """The texts of a file (or of standard input, `-`): its lines, or its blank-line-separated paragraphs."""
    raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    raw = raw.replace("\ufeff", "")
    if not paragraphs:
        return [line for line in raw.splitlines() if line.strip()]
    blocks, current = [], []
    for line in raw.splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return blocks


def tokenized(texts: Sequence[str]) -> list[TaggedInput]:
    """Each text as the service tokenizes it (tags still empty)."""
    out = []
    for text in texts:
        found = tokenize(text)
        out.append(TaggedInput(tuple(t.text for t in found), (), text, tuple((t.start, t.end) for t in found)))
    return out


def write(items: Sequence[TaggedInput], out: TextIO, fmt: str, spans: bool) -> None:
    """Write tagged inputs as `conll` (token<TAB>tag), `conllu` or `jsonl`."""
    if fmt == "conllu":
        out.write(sentences_document((TaggedText(i.tokens, i.tags, i.text, i.offsets) for i in items), spans))
        return
    for item in items:
        if fmt == "jsonl":
            out.write(json.dumps(_json(item, spans), ensure_ascii=False) + "\n")
        else:
            write_columns([Sentence(item.tokens, item.tags)], out)


def _json(item: TaggedInput, spans: bool) -> dict[str, object]:
    entry: dict[str, object] = {"tokens": list(item.tokens), "tags": list(item.tags)}
    if item.text is not None:
        entry = {"text": item.text, **entry, "offsets": [list(o) for o in item.offsets or ()]}
    if spans:
        found = []
        for span in to_spans(list(item.tags), "IOB2"):
            one: dict[str, object] = {"label": span.label, "start": span.start, "end": span.end}
            if item.text is not None and item.offsets:
                first, last = item.offsets[span.start][0], item.offsets[span.end - 1][1]
                one |= {"text": item.text[first:last], "start_char": first, "end_char": last}
            else:
                one["text"] = " ".join(item.tokens[span.start : span.end])
            found.append(one)
        entry["spans"] = found
    return entry


def from_sentences(sentences: Sequence[Sentence], tags: Sequence[Sequence[str]]) -> list[TaggedInput]:
    return [TaggedInput(s.tokens, tuple(t)) for s, t in zip(sentences, tags, strict=True)]
