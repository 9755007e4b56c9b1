"""The request path between HTTP and the batcher: limits, tokenizing, encoding, decoding.

Everything here is checked before anything is queued, so a refused request
costs the batch nothing and never shares a batch with anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import ApiError
from service.registry import Served
from service.schemas import TagRequest
from service.settings import Settings
from tagger.conllu import ConlluError, Document, parse
from tagger.decoding import Tagged, top_k
from tagger.encoding import Encoded, Vocab
from tagger.tokenizer import tokenize


@dataclass(frozen=True)
class Prepared:
    """A request's sentences, ready to queue, with what the response needs to point back."""

    tokens: list[list[str]]  # per input; a blank text has none
    offsets: list[list[tuple[int, int]]] | None  # per input, when the input was text
    encoded: list[Encoded]  # the inputs with tokens, in order: what is queued
    total_tokens: int
    document: Document | None = None  # conllu input, to fill in


def _too_many(field: str, what: str, count: int, limit: int, setting: str) -> ApiError:
    return ApiError(
        422,
        f"too_many_{what.replace(' ', '_')}",
        f"{field} has {count} {what}; the limit is {limit} ({setting})",
        field,
    )


def _check_unicode(field: str, value: str, lines: bool = False) -> None:
    """Refuse a lone UTF-16 surrogate (JSON allows `"\\ud800"`: no answer holding it could be encoded), naming
    where it is (with `lines`, the line of a document)."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        at = err.start
        line = value.count("\n", 0, at) + 1 if lines else None
        where = f"{field} line {line}" if lines else field
        raise ApiError(
            422,
            "invalid_unicode",
            f"{where} holds a lone UTF-16 surrogate (U+{ord(value[at]):04X}) at character {at}; "
            "send text as UTF-8, or escape a character beyond U+FFFF as a surrogate pair",
            field,
            line=line,
        ) from None


def _check_tokens(field: str, tokens: list[str], settings: Settings) -> None:
    if len(tokens) > settings.max_tokens:
        raise _too_many(field, "tokens", len(tokens), settings.max_tokens, "TAGGER_MAX_TOKENS")
    for j, token in enumerate(tokens):
        if not token.strip():
            raise ApiError(422, "empty_token", f"{field}[{j}] is an empty or blank token", f"{field}[{j}]")
        if not token.isascii():  # the field's name is built only for the few tokens that need the check
            _check_unicode(f"{field}[{j}]", token)
        if len(token) > settings.max_token_chars:
            raise _too_many(
                f"{field}[{j}]", "characters", len(token), settings.max_token_chars, "TAGGER_MAX_TOKEN_CHARS"
            )


def _read_document(text: str, settings: Settings) -> Document:
    """Parse a CoNLL-U input and check it against the limits; every refusal names its line."""
    try:
        document = parse(text)
    except ConlluError as err:
        raise ApiError(
            422, "invalid_conllu", f"conllu line {err.line}: {err.reason}", "conllu", line=err.line
        ) from None
    if len(document.sentences) > settings.max_sentences:
        raise _too_many("conllu", "sentences", len(document.sentences), settings.max_sentences, "TAGGER_MAX_SENTENCES")
    for sentence in document.sentences:
        line = sentence.first_line
        if len(sentence.forms) > settings.max_tokens:
            message = f"conllu line {line}: the sentence has {len(sentence.forms)} words; the limit is "
            raise ApiError(
                422, "too_many_tokens", f"{message}{settings.max_tokens} (TAGGER_MAX_TOKENS)", "conllu", line=line
            )
        for index, form in zip(sentence.words, sentence.forms, strict=True):
            if len(form) > settings.max_token_chars:
                message = f"conllu line {index + 1}: FORM has {len(form)} characters; the limit is "
                limit = f"{settings.max_token_chars} (TAGGER_MAX_TOKEN_CHARS)"
                raise ApiError(422, "too_many_characters", message + limit, "conllu", line=index + 1)
    return document


def _check_format(request: TagRequest) -> None:
    fmt = request.answer_format
    if fmt != "json" and (request.scores or request.top_k):
        asked = "top_k" if request.top_k else "scores"
        raise ApiError(
            422,
            "format_without_scores",
            f"{asked} is answered in the json format only; this request asks for format {fmt!r}",
            asked,
        )


def prepare(request: TagRequest, vocab: Vocab, settings: Settings) -> Prepared:
    """Check the request against the limits, tokenize texts, encode every sentence."""
    _check_format(request)
    document = None
    if request.conllu is not None:
        _check_unicode("conllu", request.conllu, lines=True)
        document = _read_document(request.conllu, settings)
        request = request.model_copy(update={"sentences": [list(s.forms) for s in document.sentences], "conllu": None})
    inputs = request.sentences if request.sentences is not None else request.texts
    assert inputs is not None
    name = "conllu" if document is not None else "sentences" if request.sentences is not None else "texts"
    if len(inputs) > settings.max_sentences:
        raise _too_many(name, "items", len(inputs), settings.max_sentences, "TAGGER_MAX_SENTENCES")
    if request.top_k > settings.max_top_k:
        raise ApiError(
            422,
            "top_k_too_large",
            f"top_k is {request.top_k}; the limit is {settings.max_top_k} (TAGGER_MAX_TOP_K)",
            "top_k",
        )
    offsets: list[list[tuple[int, int]]] | None = None
    if request.sentences is not None:
        tokens = request.sentences
        for i, sentence in enumerate(tokens):
            if not sentence:
                raise ApiError(422, "empty_sentence", f"sentences[{i}] has no tokens", f"sentences[{i}]")
            _check_tokens(f"sentences[{i}]", sentence, settings)
    else:
        assert request.texts is not None
        tokens, offsets = [], []
        for i, text in enumerate(request.texts):
            if len(text) > settings.max_text_chars:
                raise _too_many(
                    f"texts[{i}]", "characters", len(text), settings.max_text_chars, "TAGGER_MAX_TEXT_CHARS"
                )
            _check_unicode(f"texts[{i}]", text)
            found = tokenize(text)  # a blank text has no tokens: its result is empty, in its place
            tokens.append([t.text for t in found])
            offsets.append([(t.start, t.end) for t in found])
            # the tokenizer's tokens are never blank, their text was checked whole, and a long one costs
            # the model no more than a short one (it reads a word's first and last characters): only count them
            if len(tokens[-1]) > settings.max_tokens:
                raise _too_many(f"texts[{i}]", "tokens", len(tokens[-1]), settings.max_tokens, "TAGGER_MAX_TOKENS")
    total = sum(len(s) for s in tokens)
    if total > settings.max_request_tokens:
        raise _too_many(name, "tokens", total, settings.max_request_tokens, "TAGGER_MAX_REQUEST_TOKENS")
    values = total * (1 + request.top_k)
    if values > settings.max_response_values:
        raise ApiError(
            422,
            "response_too_large",
            f"{total} tokens with top_k {request.top_k} make {values} values in the answer; the limit is "
            f"{settings.max_response_values} (TAGGER_MAX_RESPONSE_VALUES): send fewer tokens or a smaller top_k",
            "top_k" if request.top_k else name,
        )
    encoded = [vocab.encode_sentence(s) for s in tokens if s]
    return Prepared(tokens=tokens, offsets=offsets, encoded=encoded, total_tokens=total, document=document)


def placed(prepared: Prepared, tagged: list[Tagged], labels: int) -> list[Tagged]:
    """One result per input: the model's for those with tokens, an empty one for blank texts.

    `labels` is the number of output tags (top_k's columns), for the empty marginals.
    """
    if len(tagged) == len(prepared.tokens):
        return tagged  # no blank text: the answers as they are
    answers, empty = iter(tagged), Tagged([], (), np.empty(0), np.empty((0, labels)))
    return [next(answers) if tokens else empty for tokens in prepared.tokens]


def result(
    tokens: list[str],
    tagged: Tagged,
    request: TagRequest,
    offsets: list[tuple[int, int]] | None,
    text: str | None,
    model: Served,
) -> dict[str, Any]:
    """One sentence's response entry (the `TagResult` schema) from what its model returned.

    Built as plain JSON-ready data: the routes serialize it directly, without
    re-validating their own output through pydantic on the event loop.
    """
    out: dict[str, Any] = {"tokens": tokens, "tags": tagged.tags}
    if request.scores:
        assert tagged.probs is not None, "scores were asked for, so the batcher sent probabilities"
        out["scores"] = [round(p, 6) for p in tagged.probs.tolist()]
    if request.top_k:
        assert tagged.marginals is not None, "top_k was asked for, so the batcher sent probabilities"
        best_tags = top_k(tagged.marginals, model.output_tags, request.top_k)
        out["top_k"] = [[{"tag": t, "probability": round(p, 6)} for t, p in best] for best in best_tags]
    if offsets is not None:
        out["offsets"] = [list(o) for o in offsets]
    if model.spans:
        found = []
        for span in tagged.spans:
            entry: dict[str, Any] = {"label": span.label, "start": span.start, "end": span.end}
            if offsets is not None and text is not None:
                first, last = offsets[span.start][0], offsets[span.end - 1][1]
                entry |= {"text": text[first:last], "start_char": first, "end_char": last}
            else:
                entry["text"] = " ".join(tokens[span.start : span.end])
            entry["score"] = round(span.score, 6)
            found.append(entry)
        out["spans"] = found
    return out
