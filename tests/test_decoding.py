"""Scores -> tags, shared by evaluation on checkpoints and by the service."""

from __future__ import annotations

import numpy as np
import pytest

from tagger.decoding import decode, softmax


def test_decode_takes_the_best_tag_per_token() -> None:
    decoded = decode(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), ["A", "B", "C"])
    assert decoded.tags == ["A", "C"]
    assert decoded.ids.tolist() == [0, 2]
    assert decoded.probs[0] == pytest.approx(np.exp(2) / (np.exp(2) + 2))


def test_top_k_lists_tags_best_first_with_probabilities() -> None:
    decoded = decode(np.array([[0.0, 3.0, 1.0]]), ["A", "B", "C"], top_k=2)
    (best,) = decoded.top_k
    assert [tag for tag, _ in best] == ["B", "C"]
    assert best[0][1] > best[1][1]


def test_softmax_is_stable_for_large_scores() -> None:
    probs = softmax(np.array([[1000.0, 1000.0]]))
    assert probs.tolist() == [[0.5, 0.5]]


def test_decode_refuses_scores_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"expected scores of shape \(T, 2\), got \(1, 3\)"):
        decode(np.zeros((1, 3)), ["A", "B"])
