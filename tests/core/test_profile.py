"""Drift statistics (tagger.profile): known counts on a hand-made batch, merging, token classes, the JSON file."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tagger.decoding import Decoded, Decoder, ScoredSpan
from tagger.encoding import PAD_TOKEN, UNK_TOKEN, Vocab
from tagger.profile import (
    CASES,
    LOW_CONFIDENCE,
    PROBABILITY_BOUNDS,
    PROFILE_VERSION,
    SCRIPTS,
    Counts,
    Profile,
    ProfileError,
    Profiler,
    TokenClasses,
    case_class,
    psi,
    script_class,
)

BIOES = ("B-PER", "E-PER", "I-PER", "O", "S-PER")  # model tags; answered in IOB2: B-PER, I-PER, O
VOCAB = Vocab(words=(PAD_TOKEN, UNK_TOKEN, "paris", "is", "nice", "john"), chars=(PAD_TOKEN, UNK_TOKEN), tags=BIOES)


def decoded(ids: list[int], probs: list[float], spans: list[ScoredSpan]) -> Decoded:
    n = len(ids)
    return Decoded(np.array(ids), ["?"] * n, np.array(probs), np.zeros((n, 3)), ("B-PER", "I-PER", "O"), spans)


SENTENCES = [["Paris", "is", "NICE", "🙂"], ["john", "Smith"]]
DECODED = [
    decoded([4, 3, 3, 3], [0.95, 0.5, 0.99, 1.0], [ScoredSpan("PER", 0, 1, 0.9)]),  # S-PER O O O
    decoded([0, 1], [0.85, 0.2], [ScoredSpan("PER", 0, 2, 0.2)]),  # B-PER E-PER
]


def profiler() -> Profiler:
    return Profiler(VOCAB, Decoder(BIOES, "BIOES"))


def test_a_hand_made_batch_gives_its_known_counts() -> None:
    counter = profiler()
    counts = counter.counts()
    counter.count(counts, SENTENCES, DECODED)
    assert counts.tags == ("B-PER", "I-PER", "O") and counts.labels == ("PER",)
    assert int(counts.tokens.sum()) == 6
    assert int(counts.tokens[1].sum()) == 2  # "🙂" and "Smith" map to the unknown id
    assert dict(zip(CASES, counts.tokens.sum(axis=(0, 2)).tolist(), strict=True)) == {
        "lower": 2,  # is, john
        "upper": 1,  # NICE
        "title": 2,  # Paris, Smith
        "other": 1,  # 🙂
    }
    scripts = dict(zip(SCRIPTS, counts.tokens.sum(axis=(0, 1)).tolist(), strict=True))
    assert scripts["Latin"] == 5 and scripts["Common"] == 1 and sum(scripts.values()) == 6
    assert counts.chosen.tolist() == [2, 1, 3]  # S-PER and B-PER -> B-PER, E-PER -> I-PER
    # <= 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, above
    assert counts.probability.tolist() == [1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]
    assert counts.lengths.tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]  # lengths 2 and 4
    assert counts.spans.tolist() == [2]
    assert counts.by_label()["word"] == {"unknown": 2, "known": 4}
    assert counts.by_label()["tag"] == {"B-PER": 2, "I-PER": 1, "O": 3}
    assert counts.by_label()["span"] == {"PER": 2}

    profile = counts.profile({"data": "hand-made"})
    assert profile.tokens == 6 and profile.sentences == 2
    assert profile.unknown_rate == pytest.approx(2 / 6)
    assert profile.case_mix == pytest.approx({"lower": 2 / 6, "upper": 1 / 6, "title": 2 / 6, "other": 1 / 6})
    assert profile.tag_shares == pytest.approx({"B-PER": 2 / 6, "I-PER": 1 / 6, "O": 3 / 6})
    assert profile.spans_per_100_tokens == pytest.approx({"PER": 100 * 2 / 6})
    assert profile.low_confidence_threshold == LOW_CONFIDENCE == 0.8
    assert profile.low_confidence_share == pytest.approx(2 / 6)  # 0.5 and 0.2; 0.85 is above the threshold


def test_the_folded_tags_are_the_tags_the_decoder_answers() -> None:
    decoder = Decoder(BIOES, "BIOES")
    rng = np.random.default_rng(0)
    sentences = [["x"] * n for n in (1, 3, 7, 12)]
    out = [decoder.decode(rng.normal(size=(len(s), len(BIOES))) * 3) for s in sentences]
    counts = Profiler(VOCAB, decoder).counts()
    Profiler(VOCAB, decoder).count_output(counts, out)
    answered = [tag for d in out for tag in d.tags]
    assert dict(zip(counts.tags, counts.chosen.tolist(), strict=True)) == {t: answered.count(t) for t in counts.tags}


def random_batch(rng: random.Random) -> tuple[list[list[str]], list[Decoded]]:
    words = ["Paris", "is", "NICE", "john", "Smith", "🙂", "1984", ",", "Москва", "東京"]
    sentences = [[rng.choice(words) for _ in range(rng.randint(1, 30))] for _ in range(rng.randint(1, 6))]
    out = []
    for s in sentences:
        spans = [ScoredSpan("PER", 0, 1, 0.5)] * rng.randint(0, 2)
        out.append(decoded([rng.randrange(5) for _ in s], [rng.random() for _ in s], spans))
    return sentences, out


def test_merged_counts_equal_one_pass_over_everything() -> None:
    rng = random.Random(3)
    batches = [random_batch(rng) for _ in range(20)]
    counter = profiler()
    whole = counter.counts()
    counter.count(whole, [s for b in batches for s in b[0]], [d for b in batches for d in b[1]])
    merged = counter.counts()
    for sentences, out in batches:  # each batch counted apart, as by another process, and sent as a message
        one = profiler().counts()
        profiler().count(one, sentences, out)
        merged.merge(Counts.from_dict(json.loads(json.dumps(one.to_dict()))))
    assert merged.to_dict() == whole.to_dict()
    assert merged.profile() == whole.profile()


def test_counts_of_another_tag_set_are_not_merged() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        profiler().counts().merge(Counts.empty(("NOUN", "VERB")))


@pytest.mark.parametrize(
    ("token", "case", "script"),
    [
        ("paris", "lower", "Latin"),
        ("e-mail", "lower", "Latin"),
        ("USA", "upper", "Latin"),
        ("U.S.", "upper", "Latin"),
        ("Paris", "title", "Latin"),
        ("I", "title", "Latin"),  # one capital letter: a capitalised word, not shouting
        ("3M", "title", "Latin"),
        ("iPhone", "other", "Latin"),
        ("McDonald", "other", "Latin"),
        ("café", "lower", "Latin"),
        ("ＡＢＣ", "upper", "Latin"),  # fullwidth letters
        ("1984", "other", "Common"),
        ("3.14", "other", "Common"),
        ("?!", "other", "Common"),
        ("🙂", "other", "Common"),
        ("👍🏽", "other", "Common"),  # emoji with a skin-tone modifier
        ("", "other", "Common"),
        ("Москва", "title", "Cyrillic"),
        ("МОСКВА", "upper", "Cyrillic"),
        ("Ελλάδα", "title", "Greek"),
        ("القاهرة", "other", "Arabic"),
        ("שלום", "other", "Hebrew"),
        ("東京", "other", "Han"),
        ("カタカナ", "other", "Kana"),
        ("서울", "other", "Hangul"),
        ("Mоscow", "title", "Mixed"),  # a Cyrillic о among Latin letters
        ("東京タワー", "other", "Mixed"),
        ("ሰላም", "other", "Other"),  # Ethiopic: a script not listed
        ("x2", "lower", "Latin"),
        ("١٢٣", "other", "Common"),  # Arabic-Indic digits are digits
    ],
)
def test_case_and_script_classes(token: str, case: str, script: str) -> None:
    assert (CASES[case_class(token)], SCRIPTS[script_class(token)]) == (case, script)


def test_token_classes_are_remembered_within_their_bound() -> None:
    classes = TokenClasses(VOCAB, size=2)
    first = classes.codes(["Paris", "is", "NICE", "Paris"])
    assert len(classes) <= 2
    assert classes.codes(["Paris", "is", "NICE", "Paris"]) == first
    assert first[0] == first[3] != first[1]


def test_a_profile_round_trips_through_json() -> None:
    counter = profiler()
    counts = counter.counts()
    counter.count(counts, SENTENCES, DECODED)
    profile = counts.profile({"data": "hand-made", "model_sha256": "0" * 64})
    again = Profile.from_json(profile.to_json())
    assert again == profile
    assert json.loads(profile.to_json())["format_version"] == PROFILE_VERSION


def test_a_profile_of_another_version_or_other_buckets_is_refused() -> None:
    data = json.loads(profiler().counts().profile().to_json())
    with pytest.raises(ProfileError, match="format_version 2 is not supported"):
        Profile.from_json(json.dumps({**data, "format_version": 2}))
    with pytest.raises(ProfileError, match="format_version None"):
        Profile.from_json("[]")
    other = {**data, "probability": {"bounds": [0.5, 1.0], "counts": [0, 0, 0]}}
    with pytest.raises(ProfileError, match="probability buckets"):
        Profile.from_json(json.dumps(other))
    with pytest.raises(ProfileError, match="unexpected or missing fields"):
        Profile.from_json(json.dumps({k: v for k, v in data.items() if k != "tag_shares"}))
    with pytest.raises(ProfileError, match="not valid JSON"):
        Profile.from_json("{")


def test_low_confidence_threshold_is_a_bucket_bound() -> None:
    assert LOW_CONFIDENCE in PROBABILITY_BOUNDS  # else the share cannot be read off the histogram


def test_psi() -> None:
    even = {"A": 0.5, "B": 0.5}
    assert psi(even, even) == 0.0
    assert psi(even, {"A": 0.9, "B": 0.1}) == pytest.approx(0.4 * np.log(0.5 / 0.9) * -1 + 0.4 * np.log(5))
    assert psi({"A": 1.0}, {"A": 0.5, "B": 0.5}) > 1.0  # a tag that vanished counts, floored
