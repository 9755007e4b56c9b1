"""Scores -> tags, probabilities and spans, shared by evaluation on checkpoints and by the service.

The structured decoder (Viterbi, forward-backward, span probabilities) is
checked against brute force over every tag sequence of tiny tag sets.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tagger.decoding import FORBIDDEN, CrfScores, Decoder, decode, softmax
from tagger.schemes import Scheme, to_spans

BIO = ("B-PER", "I-PER", "B-LOC", "I-LOC", "O")
BIOES = ("B-PER", "I-PER", "E-PER", "S-PER", "O")


def random_crf(k: int, rng: np.random.Generator) -> CrfScores:
    return CrfScores(rng.normal(size=(k, k)), rng.normal(size=k), rng.normal(size=k))


def all_paths(decoder: Decoder, emissions: np.ndarray) -> list[tuple[tuple[int, ...], float]]:
    """Every tag sequence with its total score (the decoder's transitions, constraints included)."""
    t, k = emissions.shape
    out = []
    for path in itertools.product(range(k), repeat=t):
        score = decoder.start[path[0]] + decoder.end[path[-1]] + sum(emissions[i, p] for i, p in enumerate(path))
        score += sum(decoder.transitions[a, b] for a, b in itertools.pairwise(path))
        out.append((path, float(score)))
    return out


def test_plain_tags_take_the_best_tag_per_token() -> None:
    decoded = decode(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), ["A", "B", "C"])
    assert decoded.tags == ["A", "C"]
    assert decoded.ids.tolist() == [0, 2]
    assert decoded.probs[0] == pytest.approx(np.exp(2) / (np.exp(2) + 2))
    assert decoded.spans == []


def test_top_k_lists_tags_best_first_with_probabilities() -> None:
    decoded = decode(np.array([[0.0, 3.0, 1.0]]), ["A", "B", "C"])
    (best,) = decoded.top_k(2)
    assert [tag for tag, _ in best] == ["B", "C"]
    assert best[0][1] > best[1][1]


def test_softmax_is_stable_for_large_scores() -> None:
    probs = softmax(np.array([[1000.0, 1000.0]]))
    assert probs.tolist() == [[0.5, 0.5]]


def test_decode_refuses_scores_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"expected scores of shape \(T, 2\), got \(1, 3\)"):
        decode(np.zeros((1, 3)), ["A", "B"])


@pytest.mark.parametrize(("tags", "scheme"), [(BIO, "IOB2"), (BIOES, "BIOES"), (("A", "B", "C"), None)])
@pytest.mark.parametrize("length", [1, 2, 4])
def test_crf_viterbi_and_marginals_match_brute_force(tags: tuple[str, ...], scheme: Scheme | None, length: int) -> None:
    rng = np.random.default_rng(length)
    decoder = Decoder(tags, scheme, random_crf(len(tags), rng))
    emissions = rng.normal(size=(length, len(tags))) * 2
    paths = all_paths(decoder, emissions)
    best_path, _ = max(paths, key=lambda p: p[1])
    log_z = np.logaddexp.reduce([s for _, s in paths])
    marginals = np.zeros((length, len(tags)))
    for path, s in paths:
        marginals[np.arange(length), path] += np.exp(s - log_z)

    decoded = decoder.decode(emissions)
    assert decoded.ids.tolist() == list(best_path)
    if scheme != "BIOES":  # BIOES marginals are merged into IOB2 tags; checked below
        np.testing.assert_allclose(decoded.marginals, marginals, atol=1e-9)
    np.testing.assert_allclose(decoded.marginals.sum(axis=1), 1.0, atol=1e-9)


BIOES_TWO = ("B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "O")


def bioes_spans(path: tuple[str, ...]) -> set[tuple[str, int, int]] | None:
    """(label, start, end) of each entity of a BIOES sequence, or None if the sequence breaks the scheme:
    written from the scheme's definition, not from tagger.schemes, so that its constraints are checked too."""
    spans, opened = set(), None  # opened: (label, start) of the entity in progress
    for i, tag in enumerate(path):
        prefix, label = tag[0], tag[2:]
        if prefix in "BSO" and opened is not None:
            return None  # an entity left open
        if prefix in "IE" and (opened is None or opened[0] != label):
            return None  # inside or closing an entity that is not open
        if prefix == "B":
            opened = (label, i)
        elif prefix == "S":
            spans.add((label, i, i + 1))
        elif prefix == "E":
            assert opened is not None
            spans.add((label, opened[1], i + 1))
            opened = None
    return spans if opened is None else None


@pytest.mark.parametrize("length", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_bioes_crf_matches_brute_force_over_the_valid_sequences_alone(length: int, seed: int) -> None:
    """Viterbi, every merged IOB2 marginal and every span probability of the shipped scheme (BIOES in, IOB2
    out) against the sum over the sequences BIOES allows, scored by the learned CRF alone (no constraint
    matrix): a wrong constraint, a wrong merge or a wrong recursion each changes some number here."""
    rng = np.random.default_rng(100 * seed + length)
    crf = random_crf(len(BIOES_TWO), rng)
    decoder = Decoder(BIOES_TWO, "BIOES", crf)
    emissions = rng.normal(size=(length, len(BIOES_TWO))) * 2
    valid: list[tuple[tuple[int, ...], float, set[tuple[str, int, int]]]] = []
    for path in itertools.product(range(len(BIOES_TWO)), repeat=length):
        spans = bioes_spans(tuple(BIOES_TWO[i] for i in path))
        if spans is None:
            continue
        score = crf.start[path[0]] + crf.end[path[-1]] + sum(emissions[i, p] for i, p in enumerate(path))
        valid.append((path, float(score + sum(crf.transitions[a, b] for a, b in itertools.pairwise(path))), spans))
    log_z = np.logaddexp.reduce([score for _, score, _ in valid])
    iob2 = {tag: ("B-" if tag[0] in "BS" else "I-") + tag[2:] if tag != "O" else "O" for tag in BIOES_TWO}
    marginals: dict[tuple[int, str], float] = {}
    span_mass: dict[tuple[str, int, int], float] = {}
    for path, score, spans in valid:
        p = float(np.exp(score - log_z))
        for i, tag in enumerate(path):
            marginals[i, iob2[BIOES_TWO[tag]]] = marginals.get((i, iob2[BIOES_TWO[tag]]), 0.0) + p
        for span in spans:
            span_mass[span] = span_mass.get(span, 0.0) + p
    best, _, best_spans = max(valid, key=lambda one: one[1])

    decoded = decoder.decode(emissions)
    assert decoded.ids.tolist() == list(best)
    assert decoded.tags == [iob2[BIOES_TWO[i]] for i in best]
    assert set(decoded.output_tags) == set(iob2.values())
    expected = np.array([[marginals.get((i, tag), 0.0) for tag in decoded.output_tags] for i in range(length)])
    np.testing.assert_allclose(decoded.marginals, expected, atol=1e-9)
    np.testing.assert_allclose(
        decoded.probs, expected[np.arange(length), [decoded.output_tags.index(t) for t in decoded.tags]], atol=1e-9
    )
    assert {(s.label, s.start, s.end) for s in decoded.spans} == best_spans
    for span in decoded.spans:
        assert span.score == pytest.approx(span_mass[span.label, span.start, span.end], abs=1e-9)


def test_bioes_probabilities_are_merged_into_iob2_tags() -> None:
    rng = np.random.default_rng(3)
    decoder = Decoder(BIOES, "BIOES", random_crf(5, rng))
    emissions = rng.normal(size=(3, 5))
    decoded = decoder.decode(emissions)
    assert decoder.output_tags == ("B-PER", "I-PER", "O")
    paths = all_paths(decoder, emissions)
    log_z = np.logaddexp.reduce([s for _, s in paths])
    b_per_first = sum(np.exp(s - log_z) for p, s in paths if BIOES[p[0]] in ("B-PER", "S-PER"))
    assert decoded.marginals[0, 0] == pytest.approx(b_per_first, abs=1e-9)


@pytest.mark.parametrize(("tags", "scheme"), [(BIO, "IOB2"), (BIOES, "BIOES")])
def test_span_scores_are_the_exact_probability_of_each_span(tags: tuple[str, ...], scheme: Scheme) -> None:
    rng = np.random.default_rng(7)
    decoder = Decoder(tags, scheme, random_crf(len(tags), rng))
    for _ in range(20):
        emissions = rng.normal(size=(4, len(tags))) * 3
        paths = all_paths(decoder, emissions)
        log_z = np.logaddexp.reduce([s for _, s in paths])
        decoded = decoder.decode(emissions)
        for span in decoded.spans:
            expected = sum(
                np.exp(s - log_z)
                for path, s in paths
                if (span.label, span.start, span.end)
                in {(x.label, x.start, x.end) for x in to_spans([tags[i] for i in path], scheme)}
            )
            assert span.score == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("tags", "scheme"), [(BIO, "IOB2"), (BIOES, "BIOES")])
def test_no_invalid_sequence_is_ever_returned(tags: tuple[str, ...], scheme: Scheme) -> None:
    rng = np.random.default_rng(0)
    i_per = tags.index("I-PER")
    for crf in (None, random_crf(len(tags), rng)):
        decoder = Decoder(tags, scheme, crf)
        for _ in range(200):
            emissions = rng.normal(size=(6, len(tags))) * 5
            emissions[:, i_per] += 8  # the network screams I-PER everywhere
            decoded = decoder.decode(emissions)
            iob2 = decoded.tags
            assert iob2[0] != "I-PER"
            for before, after in itertools.pairwise(iob2):
                if after.startswith("I-"):
                    assert before in ("B-" + after[2:], after)


def test_span_tags_without_a_crf_decode_the_constrained_softmax() -> None:
    # the argmax would be O I-PER; constraints force a valid reading
    decoder = Decoder(BIO, "IOB2")
    emissions = np.log(np.array([[0.01, 0.01, 0.01, 0.01, 0.96], [0.3, 0.6, 0.04, 0.03, 0.03]]))
    decoded = decoder.decode(emissions)
    assert decoded.tags in (["O", "B-PER"], ["B-PER", "I-PER"])
    assert [s.label for s in decoded.spans] == ["PER"]


def test_batch_decoding_ignores_padding_and_equals_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    decoder = Decoder(BIOES, "BIOES", random_crf(5, rng))
    lengths = np.array([3, 7, 1, 5])
    scores = rng.normal(size=(4, 7, 5))
    scores[0, 3:] = 1e3  # padding garbage must not leak
    for row, decoded in enumerate(decoder.decode_batch(scores, lengths)):
        alone = decoder.decode(scores[row, : lengths[row]])
        assert decoded.tags == alone.tags
        np.testing.assert_allclose(decoded.marginals, alone.marginals, atol=1e-12)
        assert [s.score for s in decoded.spans] == pytest.approx([s.score for s in alone.spans])


def test_forbidden_moves_score_below_any_real_path() -> None:
    decoder = Decoder(BIO, "IOB2")
    assert decoder.transitions[BIO.index("O"), BIO.index("I-PER")] == FORBIDDEN
    assert decoder.start[BIO.index("I-LOC")] == FORBIDDEN
    assert decoder.transitions[BIO.index("B-PER"), BIO.index("I-PER")] == 0.0


def test_crf_scores_round_trip_through_a_dict() -> None:
    crf = random_crf(3, np.random.default_rng(1))
    again = CrfScores.from_dict(crf.to_dict())
    np.testing.assert_array_equal(again.transitions, crf.transitions)
    np.testing.assert_array_equal(again.end, crf.end)
