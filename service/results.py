"""The request path's typed results: one `SentenceResult` per input, what /v1 and /v2 each render.

Built once from the inference process's `Tagged` and the prepared request (`service.pipeline`): scores and top-k
rounded to 6 decimals, spans with their text and (for text inputs) character offsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.api.schemas import TagRequest
from service.errors import ApiError
from service.models.served import Served
from service.pipeline import Prepared
from tagger.decoding import Tagged, top_k


@dataclass(frozen=True)
class SpanResult:
    label: str
    start: int  # token indexes, end exclusive
    end: int
    text: str
    score: float
    chars: tuple[int, int] | None  # character offsets into the text, when the input was text


@dataclass(frozen=True)
class SentenceResult:
    """One input's answer, typed: what /v1 and /v2 render."""

    tokens: list[str]
    tags: list[str]
    scores: list[float] | None  # the chosen tag's probability per token, when asked for
    top_k: list[list[tuple[str, float]]] | None  # per token, when asked for
    offsets: list[tuple[int, int]] | None  # when the input was text
    spans: list[SpanResult] | None  # span models


def sentence_results(
    body: TagRequest, prepared: Prepared, tagged: Sequence[Tagged], served: Served
) -> list[SentenceResult]:
    """Each input's typed result, in order (scores and top-k rounded to 6 decimals, as every answer carries them)."""
    offsets: Sequence[list[tuple[int, int]] | None] = prepared.offsets or [None] * len(tagged)
    texts: Sequence[str | None] = body.texts or [None] * len(tagged)
    return [
        _result(tokens, one, body, where, text, served)
        for tokens, one, where, text in zip(prepared.tokens, tagged, offsets, texts, strict=True)
    ]


def _result(
    tokens: list[str],
    tagged: Tagged,
    body: TagRequest,
    offsets: list[tuple[int, int]] | None,
    text: str | None,
    served: Served,
) -> SentenceResult:
    scores = None
    if body.scores:
        assert tagged.probs is not None, "scores were asked for, so the batcher sent probabilities"
        _finite(bool(np.isfinite(tagged.probs).all()), served)
        scores = [round(p, 6) for p in tagged.probs.tolist()]
    best = None
    if body.top_k:
        assert tagged.marginals is not None, "top_k was asked for, so the batcher sent probabilities"
        _finite(bool(np.isfinite(tagged.marginals).all()), served)
        found = top_k(tagged.marginals, served.output_tags, body.top_k)
        best = [[(t, round(p, 6)) for t, p in token] for token in found]
    spans = None
    if served.spans:
        spans = []
        for span in tagged.spans:
            if offsets is not None and text is not None:
                first, last = offsets[span.start][0], offsets[span.end - 1][1]
                words, chars = text[first:last], (first, last)
            else:
                words, chars = " ".join(tokens[span.start : span.end]), None
            _finite(math.isfinite(span.score), served)
            spans.append(SpanResult(span.label, span.start, span.end, words, round(span.score, 6), chars))
    return SentenceResult(tokens, tagged.tags, scores, best, offsets, spans)


def _finite(finite: bool, served: Served) -> None:
    """A probability that is not a number (NaN, infinite) never reaches an answer: JSON has no way to write it.

    The load-time self-check refuses a graph that scores its probe so (`tagger.runtime.self_check`); one that
    does so only for some inputs is refused here, per request, as the server's fault.
    """
    if not finite:
        raise ApiError(
            500,
            "invalid_model_output",
            f"model {served.name!r} version {served.version} gave probabilities that are not numbers (NaN or "
            "infinite) for this input; its answer cannot be written as JSON",
        )
