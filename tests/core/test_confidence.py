"""A sentence's confidence (the review queue's order): the probability of the decoded path under the model for
structured decoding, checked against brute force over every tag sequence; the lowest token probability for
softmax. It travels in `Tagged` whether or not the request asked for probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from tagger.decoding import Decoder, decode
from tagger.schemes import Scheme
from tests.core.test_decoding import BIO, BIOES, all_paths, random_crf


@pytest.mark.parametrize(("tags", "scheme"), [(BIO, "IOB2"), (BIOES, "BIOES"), (("A", "B", "C"), None)])
@pytest.mark.parametrize("length", [1, 2, 4])
def test_crf_confidence_is_the_viterbi_paths_probability(
    tags: tuple[str, ...], scheme: Scheme | None, length: int
) -> None:
    rng = np.random.default_rng(10 + length)
    decoder = Decoder(tags, scheme, random_crf(len(tags), rng))
    emissions = rng.normal(size=(length, len(tags))) * 2
    paths = all_paths(decoder, emissions)
    best = max(s for _, s in paths)
    log_z = np.logaddexp.reduce([s for _, s in paths])
    decoded = decoder.decode(emissions)
    assert decoded.confidence == pytest.approx(np.exp(best - log_z), rel=1e-9)


def test_span_tags_without_a_crf_score_the_constrained_path() -> None:
    rng = np.random.default_rng(3)
    decoder = Decoder(BIO, "IOB2")
    scores = rng.normal(size=(3, len(BIO))) * 2
    emissions = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))  # log-softmax, as the decoder takes it
    paths = all_paths(decoder, emissions)
    log_z = np.logaddexp.reduce([s for _, s in paths])
    assert decoder.decode(scores).confidence == pytest.approx(np.exp(max(s for _, s in paths) - log_z), rel=1e-9)


def test_softmax_confidence_is_the_lowest_token_probability() -> None:
    decoded = decode(np.array([[3.0, 0.0], [0.2, 0.0], [0.0, 5.0]]), ["A", "B"])
    assert decoded.confidence == pytest.approx(decoded.probs.min())
    assert decoded.confidence == pytest.approx(np.exp(0.2) / (np.exp(0.2) + 1))


def test_a_batch_gives_each_sentence_its_own_confidence() -> None:
    rng = np.random.default_rng(5)
    decoder = Decoder(BIO, "IOB2", random_crf(len(BIO), rng))
    batch = rng.normal(size=(3, 4, len(BIO)))
    lengths = np.array([4, 2, 1])
    together = [d.confidence for d in decoder.decode_batch(batch, lengths)]
    alone = [decoder.decode(batch[b, :n]).confidence for b, n in enumerate(lengths)]
    np.testing.assert_allclose(together, alone, rtol=1e-9)


def test_tagged_carries_the_confidence_with_or_without_details() -> None:
    decoded = decode(np.array([[1.0, 0.0]]), ["A", "B"])
    assert decoded.tagged(details=False).confidence == decoded.confidence
    assert decoded.tagged(details=True).confidence == decoded.confidence
    assert decoded.tagged(details=False).probs is None
