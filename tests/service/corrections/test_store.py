"""The store on both backends: the review queue, deduplicated and flagged corrections, export, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.corrections.errors import InvalidCorrection, WrongReviewItem
from service.corrections.records import Correction, Served
from service.corrections.schema import review_items
from service.corrections.store import CorrectionStore
from service.corrections.validation import TagRules
from tagger.readers import read_conllu, read_corpus

NER = TagRules(("B-LOC", "B-PER", "I-LOC", "I-PER", "O"), "IOB2", max_tokens=50)
UPOS = TagRules(("DET", "NOUN", "PROPN", "PUNCT", "VERB"), None, max_tokens=50)


def served(tokens: str, confidence: float, model: str = "en-ner") -> Served:
    words = tuple(tokens.split())
    return Served(model, "1", words, ("O",) * len(words), confidence)


def test_queue_lists_least_confident_uncorrected_first(store: CorrectionStore) -> None:
    ids = store.add_review_items(
        [served("a b", 0.9), served("c d", 0.2), served("e f", 0.5), served("g h", 0.1, model="other")]
    )
    assert [item.served.tokens for item in store.review_queue("en-ner", limit=2)] == [("c", "d"), ("e", "f")]
    store.add_correction(Correction("en-ner", ("c", "d"), ("B-PER", "I-PER"), review_id=ids[1]), NER)
    queue = store.review_queue("en-ner", limit=10)
    assert [item.id for item in queue] == [ids[2], ids[0]]
    assert queue[0].created_at.tzinfo is not None
    assert store.review_queue("en-ner", since=datetime.now(UTC) + timedelta(seconds=5)) == []


def test_queue_keeps_text_and_offsets(store: CorrectionStore) -> None:
    item = Served("en-ner", "2", ("Hi", "Al"), ("O", "B-PER"), 0.4, text="Hi Al", offsets=((0, 2), (3, 5)))
    store.add_review_items([item])
    assert store.review_queue("en-ner")[0].served == item


def test_retention_and_purge(store: CorrectionStore) -> None:
    store.add_review_items([served("old one", 0.1)])
    with store.engine.begin() as connection:  # age it: kept three days ago
        connection.execute(sa.update(review_items).values(created_at=datetime.now(UTC) - timedelta(days=3)))
    store.add_review_items([served("new one", 0.5), served("other", 0.5, model="other")])
    assert store.delete_review_older_than(timedelta(days=1)) == 1
    assert [i.served.tokens for i in store.review_queue("en-ner")] == [("new", "one")]
    assert store.purge_review("en-ner") == 1
    assert store.review_queue("en-ner") == [] and len(store.review_queue("other")) == 1
    assert store.purge_review() == 1


def test_same_correction_is_stored_once(store: CorrectionStore) -> None:
    correction = Correction("en-ner", ("Al", "Gore"), ("B-PER", "I-PER"))
    first = store.add_correction(correction, NER)
    again = store.add_correction(Correction("en-ner", ("Al", "Gore"), ("B-PER", "I-PER"), corrected_by="bo"), NER)
    assert first.created and not again.created and again.id == first.id
    other_model = store.add_correction(Correction("en-ner-2", ("Al", "Gore"), ("B-PER", "I-PER")), NER)
    assert other_model.created and other_model.id != first.id
    assert len(list(store.corrections("en-ner"))) == 1


def test_conflicting_corrections_are_kept_and_flagged(store: CorrectionStore) -> None:
    first = store.add_correction(Correction("en-ner", ("Paris", "Hilton"), ("B-PER", "I-PER")), NER)
    second = store.add_correction(Correction("en-ner", ("Paris", "Hilton"), ("B-LOC", "O")), NER)
    lone = store.add_correction(Correction("en-ner", ("Rome",), ("B-LOC",)), NER)
    assert not first.conflict and second.conflict and not lone.conflict
    flagged = {s.id: s.conflict for s in store.corrections("en-ner", "all")}
    assert flagged == {first.id: True, second.id: True, lone.id: False}
    assert [s.id for s in store.corrections("en-ner", "latest")] == [second.id, lone.id]
    assert [s.id for s in store.corrections("en-ner", "skip")] == [lone.id]


def test_invalid_corrections_name_the_token_and_store_nothing(store: CorrectionStore) -> None:
    with pytest.raises(InvalidCorrection, match=r"token 1 \(tag 'I-LOC'\): cannot follow 'O'") as caught:
        store.add_correction(Correction("en-ner", ("in", "Rome"), ("O", "I-LOC")), NER)
    assert (caught.value.index, caught.value.tag) == (1, "I-LOC")
    with pytest.raises(InvalidCorrection, match=r"token 0 .*not one of the model's tags"):
        store.add_correction(Correction("en-ner", ("Rome",), ("B-CITY",)), NER)
    [other] = store.add_review_items([served("Rome", 0.3, model="other")])
    with pytest.raises(WrongReviewItem, match=f"review item {other} is in other's queue, not en-ner's"):
        store.add_correction(Correction("en-ner", ("Rome",), ("B-LOC",), review_id=other), NER)
    assert list(store.corrections("en-ner")) == []


def test_a_correction_outlives_its_expired_review_item(store: CorrectionStore) -> None:
    [item] = store.add_review_items([served("in Rome", 0.3)])
    store.purge_review()
    stored = store.add_correction(Correction("en-ner", ("in", "Rome"), ("O", "B-LOC"), review_id=item), NER)
    assert stored.created and [s.correction.review_id for s in store.corrections("en-ner")] == [item]


def test_export_reads_back_as_training_data(store: CorrectionStore, tmp_path: Path) -> None:
    rows = [
        Correction("en-ner", ("Al", "Gore", "spoke"), ("B-PER", "I-PER", "O")),
        Correction("en-ner", ("#", "Rome", "!"), ("O", "B-LOC", "O"), text="#Rome!", offsets=((0, 1), (1, 5), (5, 6))),
    ]
    store.add_corrections(rows, NER)
    path = tmp_path / "corrections.iob2"
    path.write_text("".join(store.export("en-ner", "iob2")), encoding="utf-8")
    read = read_corpus(path)
    assert [(s.tokens, s.tags) for s in read] == [(c.tokens, c.tags) for c in rows]
    conllu = "".join(store.export("en-ner", "conllu"))
    assert "NER=B-LOC|SpaceAfter=No" in conllu and "# text = #Rome!" in conllu


def test_upos_export_trains_as_conllu(store: CorrectionStore, tmp_path: Path) -> None:
    correction = Correction("en-upos", ("The", "dog", "barks", "."), ("DET", "NOUN", "VERB", "PUNCT"))
    store.add_correction(correction, UPOS)
    path = tmp_path / "corrections.conllu"
    path.write_text("".join(store.export("en-upos", "conllu")), encoding="utf-8")
    assert [(s.tokens, s.tags) for s in read_conllu(path)] == [(correction.tokens, correction.tags)]


def test_counts_per_model_and_version(store: CorrectionStore) -> None:
    store.add_correction(
        Correction("en-ner", ("Al", "Gore"), ("B-PER", "I-PER"), version="3", served_tags=("B-PER", "O")), NER
    )
    store.add_correction(
        Correction("en-ner", ("in", "Rome"), ("O", "B-LOC"), version="3", served_tags=("O", "B-LOC")), NER
    )
    store.add_correction(Correction("en-ner", ("Rome",), ("B-LOC",)), NER)  # no served tags: not compared
    counts = {(c.model, c.version): c for c in store.counts()}
    assert (counts["en-ner", "3"].corrections, counts["en-ner", "3"].tokens_compared) == (2, 4)
    assert counts["en-ner", "3"].tokens_changed == 1
    assert (counts["en-ner", ""].corrections, counts["en-ner", ""].tokens_compared) == (1, 0)
    assert store.purge_corrections("en-ner") == 3 and store.counts() == []
