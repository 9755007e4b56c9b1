"""A request's answer in the format it asked for: json, conllu or displacy.

Each is built as plain JSON-ready data, serialized once by the route: the
json format is `TagResponse`, the others `ConlluResponse` and
`DisplacyResponse` (service.api.schemas documents all three).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.api.schemas import TagRequest
from service.models.served import Served
from service.pipeline import Prepared
from service.results import SentenceResult, sentence_results
from tagger.conllu import TaggedText, fill, sentences_document
from tagger.decoding import Tagged


def answer(
    name: str, request: TagRequest, prepared: Prepared, tagged: Sequence[Tagged], model: Served
) -> dict[str, Any]:
    """The response body for `tagged` (one per input, in order)."""
    head: dict[str, Any] = {"model": name, "version": model.version}
    fmt = request.answer_format
    offsets: Sequence[list[tuple[int, int]] | None] = prepared.offsets or [None] * len(tagged)
    texts: Sequence[str | None] = request.texts or [None] * len(tagged)
    if fmt == "conllu":
        if prepared.document is not None:
            document = fill(prepared.document, [t.tags for t in tagged], model.spans)
        else:
            items = zip(prepared.tokens, tagged, texts, offsets, strict=True)
            document = sentences_document((TaggedText(k, t.tags, x, o) for k, t, x, o in items), model.spans)
        return {**head, "format": "conllu", "conllu": document}
    if fmt == "displacy":
        inputs = zip(prepared.tokens, tagged, texts, offsets, strict=True)
        if model.spans:
            return {**head, "format": "displacy", "style": "ent", "results": [_ents(*one) for one in inputs]}
        words = [
            {"words": [{"text": k, "tag": t} for k, t in zip(tokens, one.tags, strict=True)], "arcs": [], "title": None}
            for tokens, one in zip(prepared.tokens, tagged, strict=True)
        ]
        return {**head, "format": "displacy", "style": "dep", "results": words}
    return {**head, "results": [result_json(r) for r in sentence_results(request, prepared, tagged, model)]}


def result_json(result: SentenceResult) -> dict[str, Any]:
    """One sentence's response entry (the `TagResult` schema), as plain JSON-ready data: the routes serialize it
    directly, without re-validating their own output through pydantic on the event loop."""
    out: dict[str, Any] = {"tokens": result.tokens, "tags": result.tags}
    if result.scores is not None:
        out["scores"] = result.scores
    if result.top_k is not None:
        out["top_k"] = [[{"tag": t, "probability": p} for t, p in token] for token in result.top_k]
    if result.offsets is not None:
        out["offsets"] = [list(o) for o in result.offsets]
    if result.spans is not None:
        out["spans"] = spans_json(result)
    return out


def spans_json(result: SentenceResult) -> list[dict[str, Any]]:
    """A sentence's entity spans as /v1 gives them (`EntitySpan`); /v2's `spans` output is the same JSON."""
    found = []
    for span in result.spans or []:
        entry: dict[str, Any] = {"label": span.label, "start": span.start, "end": span.end, "text": span.text}
        if span.chars is not None:
            entry |= {"start_char": span.chars[0], "end_char": span.chars[1]}
        entry["score"] = span.score
        found.append(entry)
    return found


def _ents(tokens: list[str], tagged: Tagged, text: str | None, offsets: list[tuple[int, int]] | None) -> dict[str, Any]:
    """displaCy's manual entity format: character spans into the text (tokens joined by spaces if none)."""
    if text is None or offsets is None:
        text, offsets, at = " ".join(tokens), [], 0
        for token in tokens:
            offsets.append((at, at + len(token)))
            at += len(token) + 1
    ents = [
        {"start": offsets[span.start][0], "end": offsets[span.end - 1][1], "label": span.label} for span in tagged.spans
    ]
    return {"text": text, "ents": ents, "title": None}
