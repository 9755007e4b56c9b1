"""Fresh training text every epoch: each file's share of sentences, swapped mentions, re-cased sentences.

Mention replacement: training sentences whose entity mentions are swapped for others of the same type.

A fifth of WikiANN's test entity tokens never occur in its training set. A
model that only ever sees each training mention in its own sentence can learn
the names themselves; swapping mentions between sentences (Dai & Adel 2020,
"An Analysis of Simple Data Augmentation for Named Entity Recognition") makes
it rely on what carries over to unseen names: the context and the shape of
the words. A fresh draw every epoch; the vocabulary is unchanged, since every
replacement comes from the training set itself.

The concession: a replacement can make a sentence false or ungrammatical
("Paris was born in Barack Obama"); the tags stay right, which is what counts.

Re-casing: web text writes names in lower case ("i met john in paris") and
headlines in capitals; a model that saw only edited text learns that a
capital letter is most of what makes a name. Training on some sentences in
lower or upper case makes it read the words and their context too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from tagger.readers import Sentence
from tagger.schemes import Span, from_spans, to_spans

Pool = dict[str, list[tuple[str, ...]]]


def mention_pool(sentences: Sequence[Sentence]) -> Pool:
    """Every mention's tokens by type, in corpus order (IOB2 tags), duplicates kept: draws follow frequency.

    Example: [("Ann lives in Rome", "B-PER O O B-LOC")] -> {"PER": [("Ann",)], "LOC": [("Rome",)]}
    """
    pool: Pool = {}
    for sentence in sentences:
        for span in to_spans(sentence.tags, "IOB2"):
            pool.setdefault(span.label, []).append(sentence.tokens[span.start : span.end])
    return pool


def replace_mentions(sentences: Sequence[Sentence], pool: Pool, rate: float, rng: random.Random) -> list[Sentence]:
    """The sentences with each mention replaced, with probability `rate`, by a random one of its type (IOB2)."""
    if rate <= 0:
        return list(sentences)
    return [_replaced(s, pool, rate, rng) for s in sentences]


def _replaced(sentence: Sentence, pool: Pool, rate: float, rng: random.Random) -> Sentence:
    spans = to_spans(sentence.tags, "IOB2")
    draws = [rng.random() < rate for _ in spans]
    if not any(draws):
        return sentence
    tokens: list[str] = []
    new_spans: list[Span] = []
    at = 0
    for span, replace in zip(spans, draws, strict=True):
        tokens += sentence.tokens[at : span.start]
        mention = rng.choice(pool[span.label]) if replace else sentence.tokens[span.start : span.end]
        new_spans.append(Span(span.label, len(tokens), len(tokens) + len(mention)))
        tokens += mention
        at = span.end
    tokens += sentence.tokens[at:]
    return Sentence(tuple(tokens), tuple(from_spans(new_spans, len(tokens), "IOB2")))


def draw_epoch(corpora: Sequence[Sequence[Sentence]], weights: Sequence[float], rng: random.Random) -> list[Sentence]:
    """One epoch's sentences: each corpus `weight` times over, the fraction as a random sample without repeats.

    Example: corpora of 10 and 4 sentences, weights [1.0, 0.5] -> all 10, then 2 of the 4 drawn at random.
    """
    drawn: list[Sentence] = []
    for sentences, weight in zip(corpora, weights, strict=True):
        whole, part = divmod(weight, 1.0)
        drawn += list(sentences) * int(whole)
        k = round(part * len(sentences))
        if k:
            drawn += rng.sample(list(sentences), k)
    return drawn


def recase(sentences: Sequence[Sentence], lowercase: float, uppercase: float, rng: random.Random) -> list[Sentence]:
    """Each sentence in lower case with probability `lowercase`, else in upper case with `uppercase`; tags kept."""
    if lowercase <= 0 and uppercase <= 0:
        return list(sentences)
    out = []
    for sentence in sentences:
        draw = rng.random()
        if draw < lowercase:
            sentence = Sentence(tuple(t.lower() for t in sentence.tokens), sentence.tags)
        elif draw < lowercase + uppercase:
            sentence = Sentence(tuple(t.upper() for t in sentence.tokens), sentence.tags)
        out.append(sentence)
    return out
