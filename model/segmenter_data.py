"""Raw text and its character labels, rebuilt from a CoNLL-U treebank (torch-free: benchmarks use it too).

A treebank keeps what the raw text looked like: `# newdoc` and `# newpar`
open documents and paragraphs, `# text` is each sentence as written, and
`SpaceAfter=No` says whether a space followed its last token. Paragraphs are
rebuilt by joining their sentences with one space (none after `SpaceAfter=No`),
as the CoNLL 2018 shared task's raw text files do; documents and paragraphs
are separated by a blank line.

Each character gets a label for the segmenter to learn:

    T  the last character of a token (a surface token: `don't` is one, not `do` + `n't`)
    S  the last character of a sentence (its last token's last character)
    O  anything else, whitespace included

Example: "Hi there. Bye" -> `OTOOOOTSOOOTS`... with the sentence ends on `.` and `e`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

LABELS = ("O", "S", "T")  # sorted, as the vocabulary builder orders tags
PARAGRAPH_BREAK = "\n\n"


@dataclass(frozen=True)
class GoldSentence:
    """A treebank sentence as raw text: its `# text`, surface tokens and what follows it."""

    text: str
    tokens: tuple[str, ...]  # surface forms (multi-word tokens whole)
    space_after: bool  # whether a space follows the sentence's last token
    newdoc: bool
    newpar: bool


@dataclass(frozen=True)
class Paragraph:
    """A paragraph's raw text, its character labels and its sentences' (start, end) offsets."""

    text: str
    labels: str  # one of LABELS per character of `text`
    sentences: tuple[tuple[int, int], ...]


def read_gold(path: str | Path) -> list[GoldSentence]:
    """Sentences of a CoNLL-U file with their raw text and surface tokens (empty nodes skipped)."""
    sentences: list[GoldSentence] = []
    tokens: list[str] = []
    text, space_after, newdoc, newpar = "", True, False, False
    covered = 0  # words up to this id belong to the multi-word token just read
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                sentences.append(GoldSentence(text or " ".join(tokens), tuple(tokens), space_after, newdoc, newpar))
            text, tokens, space_after, newdoc, newpar, covered = "", [], True, False, False, 0
        elif line.startswith("#"):
            newdoc |= line.startswith("# newdoc")
            newpar |= line.startswith("# newpar") or line.startswith("# newdoc")
            if line.startswith("# text = "):
                text = line[len("# text = ") :]
        else:
            cols = line.split("\t")
            if "." in cols[0]:
                continue
            if "-" in cols[0]:
                covered = int(cols[0].split("-")[1])
            elif int(cols[0]) <= covered:
                continue
            tokens.append(cols[1])
            space_after = "SpaceAfter=No" not in cols[9].split("|")
    if tokens:
        sentences.append(GoldSentence(text or " ".join(tokens), tuple(tokens), space_after, newdoc, newpar))
    return sentences


def documents(sentences: list[GoldSentence]) -> list[list[list[GoldSentence]]]:
    """Sentences grouped into documents of paragraphs, as `# newdoc` and `# newpar` say."""
    docs: list[list[list[GoldSentence]]] = []
    for sentence in sentences:
        if sentence.newdoc or not docs:
            docs.append([])
        if sentence.newpar or not docs[-1]:
            docs[-1].append([])
        docs[-1][-1].append(sentence)
    return docs


def _labels(sentence: GoldSentence) -> str:
    """One label per character of the sentence's text: each token aligned in order, whitespace skipped.

    Raises ValueError if a token is not where the text says it is.
    """
    labels = ["O"] * len(sentence.text)
    at = 0
    for token in sentence.tokens:
        while at < len(sentence.text) and sentence.text[at].isspace():
            at += 1
        if not sentence.text.startswith(token, at):
            raise ValueError(f"token {token!r} is not at offset {at} of {sentence.text!r}")
        at += len(token)
        labels[at - 1] = "T"
    labels[at - 1] = "S"
    return "".join(labels)


def paragraph(sentences: list[GoldSentence], rng: random.Random | None = None, newline: float = 0.0) -> Paragraph:
    """One paragraph's raw text and labels; with an rng, a space between sentences becomes a line break
    with probability `newline` (text with hard-wrapped or listed lines)."""
    texts, labels, spans = [], [], []
    at = 0
    for i, sentence in enumerate(sentences):
        try:
            own = _labels(sentence)
            text = sentence.text
        except ValueError:  # a `# text` that disagrees with its tokens: rebuild it from them
            text = " ".join(sentence.tokens)
            own = _labels(GoldSentence(text, sentence.tokens, True, False, False))
        texts.append(text)
        labels.append(own)
        spans.append((at, at + len(text)))
        at += len(text)
        if i < len(sentences) - 1 and sentence.space_after:
            texts.append("\n" if rng is not None and rng.random() < newline else " ")
            labels.append("O")
            at += 1
    return Paragraph("".join(texts), "".join(labels), tuple(spans))


def raw_text(doc: list[list[GoldSentence]]) -> str:
    """A document's raw text: paragraphs separated by a blank line."""
    return PARAGRAPH_BREAK.join(paragraph(p).text for p in doc)


def gold_document(doc: list[list[GoldSentence]]) -> tuple[str, list[tuple[int, int]]]:
    """A document's raw text and its sentences' (start, end) offsets in it."""
    spans: list[tuple[int, int]] = []
    at = 0
    for par in doc:
        built = paragraph(par)
        spans += [(at + a, at + b) for a, b in built.sentences]
        at += len(built.text) + len(PARAGRAPH_BREAK)
    return raw_text(doc), spans


def gold_tokens(doc: list[list[GoldSentence]]) -> list[tuple[int, int]]:
    """A document's surface tokens (`don't` whole) as (start, end) offsets in its raw text."""
    spans: list[tuple[int, int]] = []
    at = 0
    for par in doc:
        built = paragraph(par)
        start = None
        for i, (ch, label) in enumerate(zip(built.text, built.labels, strict=True)):
            if start is None and not ch.isspace():
                start = i
            if label != "O" and start is not None:
                spans.append((at + start, at + i + 1))
                start = None
        at += len(built.text) + len(PARAGRAPH_BREAK)
    return spans


def span_f1(gold: Sequence[tuple[int, ...]], found: Sequence[tuple[int, ...]]) -> float:
    """F1 (in %) of exactly matching spans."""
    hits = len(set(gold) & set(found))
    return round(100 * 2 * hits / max(len(gold) + len(found), 1), 2)


def sentence_f1(
    docs: Sequence[list[list[GoldSentence]]], segment: Callable[[str], Sequence[tuple[int, int]]]
) -> dict[str, float]:
    """Sentence precision, recall and F1 (a sentence counts if both its offsets match, as in the
    CoNLL 2018 scorer), and the characters segmented per CPU-second, over whole documents."""
    gold_total = found_total = hits = chars = 0
    cpu = 0.0
    for doc in docs:
        text, gold = gold_document(doc)
        started = time.process_time()
        found = segment(text)
        cpu += time.process_time() - started
        chars += len(text)
        hits += len(set(gold) & set(found))
        gold_total, found_total = gold_total + len(gold), found_total + len(found)
    precision, recall = hits / max(found_total, 1), hits / max(gold_total, 1)
    return {
        "precision": round(100 * precision, 2),
        "recall": round(100 * recall, 2),
        "f1": round(100 * 2 * precision * recall / max(precision + recall, 1e-12), 2),
        "sentences": gold_total,
        "characters": chars,
        "chars_per_cpu_second": round(chars / max(cpu, 1e-9)),
    }


def wrapped(par: Paragraph, width: int) -> Paragraph:
    """The paragraph hard-wrapped as e-mail clients do: the space before a word that would pass `width`
    characters on its line becomes a line break (labels unchanged, since spaces are O)."""
    chars = list(par.text)
    line = 0
    for i, ch in enumerate(chars):
        line += 1
        if ch == " " and line > width:
            chars[i], line = "\n", 0
    return Paragraph("".join(chars), par.labels, par.sentences)


def chunks(
    sentences: list[GoldSentence],
    max_chars: int,
    rng: random.Random | None = None,
    newline: float = 0.0,
    wrap: float = 0.0,
) -> Iterator[Paragraph]:
    """Training sequences: each paragraph cut into runs of consecutive sentences of at most `max_chars`
    (a longer sentence alone), so the model sees sentence boundaries inside a paragraph. With an rng,
    a space between sentences becomes a line break with probability `newline`, and a sequence is
    hard-wrapped at 40 to 80 characters with probability `wrap` (so a line break alone is no sentence end)."""

    def built(run: list[GoldSentence]) -> Paragraph:
        par = paragraph(run, rng, newline)
        if rng is not None and rng.random() < wrap:
            return wrapped(par, rng.randint(40, 80))
        return par

    for doc in documents(sentences):
        for par in doc:
            run: list[GoldSentence] = []
            size = 0
            for sentence in par:
                if run and size + 1 + len(sentence.text) > max_chars:
                    yield built(run)
                    run, size = [], 0
                run.append(sentence)
                size += len(sentence.text) + (1 if size else 0)
            if run:
                yield built(run)
