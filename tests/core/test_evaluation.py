"""Metrics: hand examples, and span scores cross-checked against seqeval (conlleval semantics)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from tagger.evaluation import PRF, Report, evaluate
from tagger.readers import read_columns
from tagger.schemes import Span, from_spans

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TYPES = ("PER", "LOC", "ORG")
IOB2_TAGS = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]


def assert_matches_seqeval(gold: list[list[str]], predicted: list[list[str]]) -> Report:
    """Overall and per-type span P/R/F1/support equal seqeval's default (non-strict) mode to 1e-9."""
    report = evaluate(gold, predicted)
    assert report.spans is not None
    approx = pytest.approx
    assert report.spans.precision == approx(precision_score(gold, predicted, zero_division=0), abs=1e-9)
    assert report.spans.recall == approx(recall_score(gold, predicted, zero_division=0), abs=1e-9)
    assert report.spans.f1 == approx(f1_score(gold, predicted, zero_division=0), abs=1e-9)
    expected = classification_report(gold, predicted, output_dict=True, zero_division=0)
    types = {k: v for k, v in expected.items() if not k.endswith(" avg")}
    assert report.per_type.keys() == types.keys()
    for label, prf in report.per_type.items():
        seqeval = types[label]
        assert (prf.precision, prf.recall, prf.f1) == approx(
            (seqeval["precision"], seqeval["recall"], seqeval["f1-score"]), abs=1e-9
        ), label
        assert prf.support == seqeval["support"]
    assert report.spans.support == expected["micro avg"]["support"]
    return report


HAND_CASES = [
    # exact match, a chunk one token short, a wrong type
    ([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-ORG"]]),
    # I- after O opens a chunk in gold and prediction alike
    ([["O", "I-PER", "I-PER", "O"]], [["O", "B-PER", "I-PER", "O"]]),
    # type switches inside a chunk split it
    ([["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-LOC", "I-ORG"]]),
    # adjacent same-type chunks, predicted merged
    ([["B-PER", "B-PER", "O"], ["O"]], [["B-PER", "I-PER", "O"], ["B-LOC"]]),
    # nothing predicted at all, and nothing in gold at all
    ([["B-PER", "O"]], [["O", "O"]]),
    ([["O", "O"]], [["B-LOC", "I-PER"]]),
    # empty sentences are fine
    ([[], ["B-LOC"]], [[], ["B-LOC"]]),
]


@pytest.mark.parametrize(("gold", "predicted"), HAND_CASES)
def test_span_scores_match_seqeval_on_hand_written_cases(gold: list[list[str]], predicted: list[list[str]]) -> None:
    assert_matches_seqeval(gold, predicted)


def test_span_scores_match_seqeval_on_random_noisy_sequences() -> None:
    rng = random.Random(2024)
    gold, predicted, noise = [], [], []
    for _ in range(300):
        length = rng.randint(1, 25)
        spans, i = [], 0
        while i < length:
            size = rng.randint(1, 4)
            if rng.random() < 0.3 and i + size <= length:
                spans.append(Span(rng.choice(TYPES), i, i + size))
            i += size
        tags = from_spans(spans, length)
        gold.append(tags)
        predicted.append([rng.choice(IOB2_TAGS) if rng.random() < 0.15 else tag for tag in tags])
        noise.append([rng.choice(IOB2_TAGS) for _ in tags])
    report = assert_matches_seqeval(gold, predicted)
    assert 0.3 < report.spans.f1 < 0.95  # type: ignore[union-attr]  # noisy, but not trivially 0 or 1
    assert_matches_seqeval(noise, predicted)  # invalid sequences on both sides


@pytest.mark.data
@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data sets not found at {DATA}")
def test_span_scores_match_seqeval_on_wnut17_dev_with_every_7th_tag_corrupted() -> None:
    gold = [list(s.tags) for s in read_columns(DATA / "wnut17" / "dev.conll")]
    tagset = sorted({tag for tags in gold for tag in tags})
    position = 0
    predicted = []
    for tags in gold:
        corrupted = []
        for tag in tags:
            position += 1
            corrupted.append(tagset[(tagset.index(tag) + 1) % len(tagset)] if position % 7 == 0 else tag)
        predicted.append(corrupted)
    report = assert_matches_seqeval(gold, predicted)
    assert report.tokens == 15733
    assert report.accuracy == pytest.approx(1 - (15733 // 7) / 15733)
    assert report.scheme == "IOB2"


def test_token_accuracy_per_tag_and_confusions() -> None:
    gold = [["B-PER", "I-PER", "O", "O"], ["B-LOC"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-LOC"]]
    report = evaluate(gold, predicted)
    assert (report.sentences, report.tokens, report.accuracy) == (2, 5, 3 / 5)
    assert report.per_tag["B-PER"] == PRF(1.0, 1.0, 1.0, 1)
    assert report.per_tag["I-PER"] == PRF(0.0, 0.0, 0.0, 1)  # never predicted: 0.0, not a division error
    assert report.per_tag["O"] == PRF(0.5, 0.5, 0.5, 2)
    assert report.per_tag["B-LOC"] == PRF(0.5, 1.0, 2 * 0.5 * 1.0 / 1.5, 1)
    assert report.confusions == [("I-PER", "O", 1), ("O", "B-LOC", 1)]
    assert report.per_type["PER"] == PRF(0.0, 0.0, 0.0, 1)
    assert report.per_type["LOC"] == PRF(0.5, 1.0, 2 * 0.5 * 1.0 / 1.5, 1)


def test_pos_tags_get_token_scores_only() -> None:
    report = evaluate([["NOUN", "VERB", "PUNCT"]], [["NOUN", "NOUN", "PUNCT"]])
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.spans is None and report.per_type == {} and report.scheme is None
    assert "f1" not in report.to_dict() and "spans" not in report.format()
    with pytest.raises(ValueError, match="not span tags"):
        evaluate([["NOUN"]], [["NOUN"]], scheme="IOB2")


def test_scheme_is_detected_from_gold_or_given() -> None:
    assert evaluate([["I-PER", "B-PER"]], [["I-PER", "I-PER"]]).scheme == "IOB1"
    assert evaluate([["B-PER", "E-PER"]], [["S-PER", "S-PER"]]).scheme == "BIOES"
    assert evaluate([["O"]], [["O"]], scheme="BIOES").scheme == "BIOES"


def test_report_to_dict_is_json_ready_and_format_is_a_table() -> None:
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "O"]]
    predicted = [["B-PER", "I-PER", "O"], ["B-ORG", "O", "B-PER"]]
    report = evaluate(gold, predicted)
    data = json.loads(json.dumps(report.to_dict()))
    expected_keys = {
        "sentences",
        "tokens",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "per_type",
        "per_tag",
        "confusions",
    }
    assert expected_keys <= set(data)
    assert data["per_type"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert data["confusions"][0] == {"gold": "B-LOC", "predicted": "B-ORG", "count": 1}
    text = report.format()
    assert "accuracy 0.6667" in text and "spans (IOB2)" in text and "B-LOC -> B-ORG: 1" in text


def test_misaligned_input_is_rejected_naming_the_sentence() -> None:
    with pytest.raises(ValueError, match="as many predicted sentences as gold ones \\(2\\), got 1"):
        evaluate([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 1: gold has 2 tags, predicted has 1"):
        evaluate([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="malformed span tag 'NOUN'"):
        evaluate([["B-PER"]], [["NOUN"]])
