"""Mention replacement keeps every sentence well-tagged and only ever swaps mentions of one type."""

from __future__ import annotations

import random

from model.augment import mention_pool, replace_mentions
from tagger.readers import Sentence
from tagger.schemes import from_spans, to_spans

CORPUS = [
    Sentence(("Ann", "lives", "in", "New", "York", "."), ("B-PER", "O", "O", "B-LOC", "I-LOC", "O")),
    Sentence(("Bob", "Smith", "visited", "Rome"), ("B-PER", "I-PER", "O", "B-LOC")),
    Sentence(("Nothing", "here"), ("O", "O")),
    Sentence(("Acme", "Corp", "hired", "Ann"), ("B-ORG", "I-ORG", "O", "B-PER")),
    Sentence(("Ann", "Bob", "Smith", "met"), ("B-PER", "B-PER", "I-PER", "O")),  # two mentions side by side
]


def test_the_pool_holds_every_mention_by_type() -> None:
    pool = mention_pool(CORPUS)
    assert pool == {
        "PER": [("Ann",), ("Bob", "Smith"), ("Ann",), ("Ann",), ("Bob", "Smith")],
        "LOC": [("New", "York"), ("Rome",)],
        "ORG": [("Acme", "Corp")],
    }


def test_replaced_sentences_keep_their_context_and_the_types_of_their_mentions() -> None:
    pool = mention_pool(CORPUS)
    rng = random.Random(3)
    changed = 0
    for _ in range(50):
        for before, after in zip(CORPUS, replace_mentions(CORPUS, pool, 0.7, rng), strict=True):
            old, new = to_spans(before.tags, "IOB2"), to_spans(after.tags, "IOB2")
            assert from_spans(new, len(after.tokens), "IOB2") == list(after.tags)  # valid IOB2, nothing lost
            assert [s.label for s in old] == [s.label for s in new]
            for span in new:
                assert after.tokens[span.start : span.end] in pool[span.label]
            outside = [t for t, tag in zip(after.tokens, after.tags, strict=True) if tag == "O"]
            assert outside == [t for t, tag in zip(before.tokens, before.tags, strict=True) if tag == "O"]
            changed += after != before
    assert changed > 50  # most draws change something at a rate of 0.7


def test_a_rate_of_zero_changes_nothing() -> None:
    assert replace_mentions(CORPUS, mention_pool(CORPUS), 0.0, random.Random(1)) == CORPUS
