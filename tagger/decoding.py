"""Tag scores -> tags: the one decoder that training and serving share.

The exported graph returns per-token scores (emissions); turning them into tag
strings, probabilities and k-best lists happens here, in numpy, so the
evaluation on a checkpoint and the service on an export cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, stable for large scores."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Decoded:
    """Tags of one sentence, with the probability of each chosen tag."""

    ids: np.ndarray  # (T,) int64 chosen tag ids
    tags: list[str]
    probs: np.ndarray  # (T,) float32 probability of the chosen tag
    top_k: list[list[tuple[str, float]]]  # per token, best first; empty unless asked


def decode(scores: np.ndarray, tagset: Sequence[str], top_k: int = 0) -> Decoded:
    """Decode one sentence's scores (T, K) into tags by per-token argmax.

    Example: scores [[2, 0], [0, 1]] with tagset ["A", "B"] -> tags ["A", "B"].
    """
    if scores.ndim != 2 or scores.shape[1] != len(tagset):
        raise ValueError(f"expected scores of shape (T, {len(tagset)}), got {scores.shape}")
    probs = softmax(scores.astype(np.float64))
    ids = probs.argmax(axis=-1)
    chosen = probs[np.arange(len(ids)), ids].astype(np.float32)
    best: list[list[tuple[str, float]]] = []
    if top_k > 0:
        order = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]
        best = [[(tagset[k], float(row[k])) for k in ks] for row, ks in zip(probs, order, strict=True)]
    return Decoded(ids=ids, tags=[tagset[i] for i in ids], probs=chosen, top_k=best)
