"""What goes into the store and what comes out: frozen dataclasses, no database types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

Offsets = tuple[tuple[int, int], ...]  # (start, end) character offsets of each token in `text`


@dataclass(frozen=True)
class Served:
    """One served sentence sampled for the review queue, as the request path saw it."""

    model: str
    version: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]  # as served (IOB2 for span tags)
    confidence: float  # CRF: probability of the Viterbi path; softmax: the lowest token probability
    text: str | None = None  # the input text, when the input was text
    offsets: Offsets | None = None


@dataclass(frozen=True)
class ReviewItem:
    """A served sentence in the queue, with its id (which a correction names to answer it)."""

    id: int
    created_at: datetime  # UTC
    served: Served


@dataclass(frozen=True)
class Correction:
    """Tokens with the right tags, from a person; what was served, when known, to count what they changed."""

    model: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]  # the right tags, IOB2 for span tags
    text: str | None = None
    offsets: Offsets | None = None
    review_id: int | None = None  # the review item it answers
    corrected_by: str | None = None
    version: str | None = None  # the served version whose tags were corrected
    served_tags: tuple[str, ...] | None = None  # the tags that version gave


@dataclass(frozen=True)
class Stored:
    """The outcome of adding a correction.

    `created` is False when the same model, tokens and tags were stored before (the id is that row's);
    `conflict` is True when another correction of the same tokens has other tags (both are kept).
    """

    id: int
    created: bool
    conflict: bool


@dataclass(frozen=True)
class StoredCorrection:
    """A correction as stored, for export and review."""

    id: int
    created_at: datetime  # UTC
    correction: Correction
    conflict: bool  # another correction of the same model and tokens has other tags


@dataclass(frozen=True)
class Counts:
    """Corrections per model and served version, for metrics: a live accuracy estimate of that version.

    `tokens_changed / tokens_compared` is the share of served tags people changed, over corrections that
    came with the served tags.
    """

    model: str
    version: str  # "" when the correction named no version
    corrections: int
    tokens_compared: int
    tokens_changed: int
