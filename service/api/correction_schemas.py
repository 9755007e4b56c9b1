"""The corrections routes' request and answer bodies (`service.api.corrections`).

Structure is checked here (types, lengths, unknown fields); what depends on the model serving (its tags, its scheme,
TAGGER_MAX_TOKENS, offsets inside the text) is checked by `service.corrections.validation`, which names the token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

MAX_ITEMS = 4096  # tokens (and tags, offsets) a correction may hold by its schema; TAGGER_MAX_TOKENS is checked too


def _whole(value: Any) -> Any:
    """JSON Schema's integers include 3.0; strings and booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"must be a whole number, got {value}")
    return int(value)


Offset = Annotated[int, Field(ge=0), BeforeValidator(_whole)]  # the bound before the validator: JSON Schema's minimum
ItemId = Annotated[int, Field(ge=1), BeforeValidator(_whole)]


class CorrectionRequest(BaseModel):
    """Tokens with the right tags, and optionally what they came from."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tokens": ["Ada", "Lovelace", "lived", "in", "London", "."],
                    "tags": ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
                    "text": "Ada Lovelace lived in London.",
                    "offsets": [[0, 3], [4, 12], [13, 18], [19, 21], [22, 28], [28, 29]],
                    "corrected_by": "ada@example.org",
                }
            ]
        },
    )

    tokens: Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_ITEMS)] = Field(
        description="the sentence's tokens, as the model was given them"
    )
    tags: Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_ITEMS)] = Field(
        description="the right tag of each token, one of the model's (IOB2 for span models)"
    )
    text: Annotated[StrictStr, Field(max_length=100_000)] | None = Field(
        None, description="the text the tokens came from"
    )
    offsets: (
        Annotated[
            list[Annotated[list[Offset], Field(min_length=2, max_length=2)]],
            Field(min_length=1, max_length=MAX_ITEMS),
        ]
        | None
    ) = Field(None, description="[start, end) of each token in `text`")
    review_id: ItemId | None = Field(None, description="the review item it answers")
    corrected_by: Annotated[StrictStr, Field(max_length=200)] | None = Field(
        None, description="who corrected it (stored, not logged)"
    )


class CorrectionStored(BaseModel):
    id: int = Field(description="the correction's id (the first one's, for a duplicate)")
    created: bool = Field(description="false: the same model, tokens and tags were stored before")
    conflict: bool = Field(description="another correction of the same tokens has other tags (both are kept)")
    version: str | None = Field(description="the version serving, whose tags it was compared with (None: not now)")
    tokens_changed: int | None = Field(description="tokens whose tag differs from that version's")


class ReviewEntry(BaseModel):
    id: int = Field(description="name it as review_id in a correction that answers it")
    created_at: datetime
    model: str
    version: str
    tokens: list[str]
    tags: list[str] = Field(description="the tags served")
    confidence: float = Field(description="CRF: P(the tags | the tokens); softmax: the lowest token probability")
    text: str | None = None
    offsets: list[list[int]] | None = None


class ReviewList(BaseModel):
    model: str
    items: list[ReviewEntry] = Field(description="least confident first, within the retention, not yet corrected")


class Purged(BaseModel):
    model: str
    purged: int = Field(description="review items forgotten (corrections stay)")
