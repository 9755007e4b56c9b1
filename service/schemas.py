"""Request and response bodies of the HTTP API.

Structure is checked here (types, unknown fields, empty lists); the limits
that operators configure are checked by `service.tagging`, which knows the
settings. Strict types: a number where a token belongs is an error, not "3".
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator, model_validator


class TagRequest(BaseModel):
    """Either pre-tokenized `sentences` or raw `texts`, never both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"sentences": [["The", "cat", "sat", "."]], "scores": True},
                {"texts": ["I don't like green eggs."], "top_k": 2},
            ]
        },
    )

    sentences: Annotated[list[list[StrictStr]], Field(min_length=1)] | None = Field(
        None, description="pre-tokenized sentences, one list of tokens each"
    )
    texts: Annotated[list[StrictStr], Field(min_length=1)] | None = Field(
        None, description="raw texts, tokenized by the built-in UD/PTB-style tokenizer"
    )
    scores: StrictBool = Field(False, description="add the probability of each chosen tag")
    top_k: int = Field(0, ge=0, description="add the k most probable tags per token")

    @field_validator("top_k", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        """JSON Schema's integers include 3.0; strings and booleans are not numbers here."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("top_k must be an integer")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"top_k must be a whole number, got {value}")
        return int(value)

    @model_validator(mode="after")
    def _one_input(self) -> TagRequest:
        if (self.sentences is None) == (self.texts is None):
            raise ValueError("give exactly one of 'sentences' (token lists) or 'texts' (strings)")
        return self


class TagScore(BaseModel):
    tag: str
    probability: float


class EntitySpan(BaseModel):
    """An entity span in a response: its label, tokens, characters (text input) and probability."""

    label: str
    start: int = Field(description="first token index")
    end: int = Field(description="token index after the last token")
    text: str
    start_char: int | None = None
    end_char: int | None = None
    score: float


class TagResult(BaseModel):
    tokens: list[str]
    tags: list[str]
    scores: list[float] | None = None
    top_k: list[list[TagScore]] | None = None
    offsets: list[tuple[int, int]] | None = Field(None, description="[start, end) character offsets into the text")
    spans: list[EntitySpan] | None = None


class TagResponse(BaseModel):
    model: str
    version: str
    results: list[TagResult]


class Limits(BaseModel):
    max_sentences: int
    max_tokens: int
    max_request_tokens: int
    max_token_chars: int
    max_text_chars: int
    max_body_bytes: int
    max_top_k: int
    max_response_values: int


class ModelInfo(BaseModel):
    name: str
    version: str
    task: str
    scheme: str | None = Field(description="scheme of the tags answers carry: IOB2 for span models, null otherwise")
    tags: list[str] = Field(description="every tag an answer can carry (for span models: B-/I- of each label, and O)")
    span_labels: list[str] | None = Field(None, description="span models: the entity labels of `spans`")
    model_scheme: str | None = Field(
        None, description="span models: the scheme the model tags in internally (BIOES), decoded to `scheme`"
    )
    scores: dict[str, Any]
    sha256: str
    exported_at: str
    limits: Limits
    card: str | None = Field(
        None, description="the model card (Markdown): data, domains, scores, known failures; in GET /v1/models/{model}"
    )


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class ErrorDetail(BaseModel):
    status: int
    reason: str = Field(description="machine-readable cause, the `reason` label of tagger_rejections")
    message: str
    field: str | None = None
    request_id: str | None = None  # the request's X-Request-ID (the client's, or one made for it)


class ErrorResponse(BaseModel):
    error: ErrorDetail
