"""A request's answer in the format it asked for: json, conllu or displacy.

Each is built as plain JSON-ready data, serialized once by the route: the
json format is `TagResponse`, the others `ConlluResponse` and
`DisplacyResponse` (service.schemas documents all three).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.registry import Served
from service.schemas import TagRequest
from service.tagging import Prepared, result
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
    results = [
        result(tokens, t, request, o, text, model)
        for tokens, t, o, text in zip(prepared.tokens, tagged, offsets, texts, strict=True)
    ]
    return {**head, "results": results}


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
