"""The OpenAPI document states what the server enforces, so a generated client cannot build a refused request.

Pydantic's schema of `TagRequest` knows the types; the limits come from the
settings the server runs with, and "exactly one of sentences or texts" is a
`oneOf` a validator cannot express. Limits across fields (tokens per request,
values per answer) have no JSON Schema form: the description states them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI

from service.api.schemas import NOT_BLANK
from service.settings import Settings

Documenter = Callable[[dict[str, Any], Settings], None]  # adds one surface's parts to the document, in place


def describe_limits(request: dict[str, Any], settings: Settings) -> None:
    """Write the settings' limits into the TagRequest schema (in place)."""
    properties = request["properties"]
    sentences = _array_branch(properties["sentences"])
    sentences["maxItems"] = settings.max_sentences
    sentences["items"] = {
        "type": "array",
        "minItems": 1,
        "maxItems": settings.max_tokens,
        "items": {"type": "string", "minLength": 1, "maxLength": settings.max_token_chars, "pattern": NOT_BLANK},
    }
    texts = _array_branch(properties["texts"])
    texts["maxItems"] = settings.max_sentences
    texts["items"] = {"type": "string", "maxLength": settings.max_text_chars}  # a blank text: an empty result
    properties["top_k"]["maximum"] = settings.max_top_k
    inputs = {"sentences": "array", "texts": "array", "conllu": "string"}
    request["oneOf"] = [
        {"required": [name], "properties": {o: {"type": kind if o == name else "null"} for o, kind in inputs.items()}}
        for name, kind in inputs.items()
    ]
    # scores and top_k only in the json format: asked for explicitly, or the default of sentences and texts
    request["anyOf"] = [
        {"properties": {"scores": {"const": False}, "top_k": {"const": 0}}},
        {"required": ["format"], "properties": {"format": {"const": "json"}}},
        {"properties": {"format": {"type": "null"}, "conllu": {"type": "null"}}},
    ]
    request["description"] = (
        "Exactly one of `sentences` (token lists), `texts` (strings) or `conllu` (a CoNLL-U document, whose "
        "structure is checked by the server: 422 `invalid_conllu` naming the line). `scores` and `top_k` only "
        "with the json format. Beyond the limits of each field: at "
        f"most {settings.max_request_tokens} tokens in all (TAGGER_MAX_REQUEST_TOKENS; a text counts the tokens "
        f"the tokenizer finds, at most {settings.max_tokens} a text), and tokens x (1 + top_k) at most "
        f"{settings.max_response_values} (TAGGER_MAX_RESPONSE_VALUES)."
    )


def _array_branch(field: dict[str, Any]) -> dict[str, Any]:
    """The array alternative of an optional list field (`anyOf: [array, null]`)."""
    for branch in field.get("anyOf", [field]):
        if branch.get("type") == "array":
            return branch  # type: ignore[no-any-return]
    raise AssertionError(f"no array in {field}")


def with_limits(
    app: FastAPI, settings: Settings, documenters: Sequence[Documenter] = ()
) -> Callable[[], dict[str, Any]]:
    """An `app.openapi` that adds the limits to FastAPI's generated document, once; `documenters` add what other
    surfaces (/v2) know of their own requests."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            describe_limits(schema["components"]["schemas"]["TagRequest"], settings)
            for document in documenters:
                document(schema, settings)
            # FastAPI documents a 422 for every route with a parameter; a model name (or version) is any
            # string, and an unknown one is a 404: a route whose 422 is only FastAPI's never answers it
            for operations in schema["paths"].values():
                for operation in operations.values():
                    if operation["responses"].get("422", {}).get("description") == "Validation Error":
                        del operation["responses"]["422"]
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
