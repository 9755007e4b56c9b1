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


def test_an_epoch_draws_each_corpus_by_its_weight() -> None:
    from model.augment import draw_epoch

    small = CORPUS[:4]
    drawn = draw_epoch([CORPUS, small], [1.0, 0.5], random.Random(2))
    assert drawn[:5] == CORPUS and len(drawn) == 7
    assert set(drawn[5:]) <= set(small) and len(set(drawn[5:])) == 2  # a half, without repeats
    assert draw_epoch([small], [2.0], random.Random(2)) == small + small
    assert draw_epoch([CORPUS], [1.0], random.Random(2)) == CORPUS  # one corpus at weight 1: as it is


def test_recasing_changes_the_case_of_whole_sentences_and_keeps_their_tags() -> None:
    from model.augment import recase

    recased = recase(CORPUS * 40, 0.3, 0.2, random.Random(5))
    lower = sum(s.tokens == tuple(t.lower() for t in s.tokens) and s.tokens[0] != "Nothing" for s in recased)
    upper = sum(s.tokens == tuple(t.upper() for t in s.tokens) for s in recased)
    assert 40 < lower < 90 and 20 < upper < 60  # about 30% and 20% of 200
    assert [s.tags for s in recased] == [s.tags for s in CORPUS * 40]
    assert recase(CORPUS, 0.0, 0.0, random.Random(5)) == CORPUS
