"""The limits every request is checked against before anything is queued, each refusal naming its field.

A refused request costs the batch nothing and never shares a batch with anyone. The field names are the caller's:
/v1 names `sentences[3]`, /v2 the same check `tokens[3]` (`Fields`).
"""

from __future__ import annotations

from service.api.schemas import TagRequest
from service.errors import ApiError
from service.settings import Settings
from tagger.conllu import ConlluError, Document, parse


def too_many(field: str, what: str, count: int, limit: int, setting: str) -> ApiError:
    return ApiError(
        422,
        f"too_many_{what.replace(' ', '_')}",
        f"{field} has {count} {what}; the limit is {limit} ({setting})",
        field,
    )


def check_unicode(field: str, value: str, lines: bool = False) -> None:
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


def check_tokens(field: str, tokens: list[str], settings: Settings) -> None:
    if len(tokens) > settings.max_tokens:
        raise too_many(field, "tokens", len(tokens), settings.max_tokens, "TAGGER_MAX_TOKENS")
    for j, token in enumerate(tokens):
        if not token.strip():
            raise ApiError(422, "empty_token", f"{field}[{j}] is an empty or blank token", f"{field}[{j}]")
        if not token.isascii():  # the field's name is built only for the few tokens that need the check
            check_unicode(f"{field}[{j}]", token)
        if len(token) > settings.max_token_chars:
            raise too_many(
                f"{field}[{j}]", "characters", len(token), settings.max_token_chars, "TAGGER_MAX_TOKEN_CHARS"
            )


def read_document(text: str, settings: Settings) -> Document:
    """Parse a CoNLL-U input and check it against the limits; every refusal names its line."""
    try:
        document = parse(text)
    except ConlluError as err:
        raise ApiError(
            422, "invalid_conllu", f"conllu line {err.line}: {err.reason}", "conllu", line=err.line
        ) from None
    if len(document.sentences) > settings.max_sentences:
        raise too_many("conllu", "sentences", len(document.sentences), settings.max_sentences, "TAGGER_MAX_SENTENCES")
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


def check_format(request: TagRequest) -> None:
    fmt = request.answer_format
    if fmt != "json" and (request.scores or request.top_k):
        asked = "top_k" if request.top_k else "scores"
        raise ApiError(
            422,
            "format_without_scores",
            f"{asked} is answered in the json format only; this request asks for format {fmt!r}",
            asked,
        )
