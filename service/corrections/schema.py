"""The tables, as SQLAlchemy Core queries them; `migrations/versions/` creates and changes them.

Kept in step with the head revision by hand, and checked by a test that migrates an empty database to
head and compares (tests/service/corrections/test_migrations.py).

Tokens and tags are JSON lists. `key` is the SHA-256 of (model, tokens, tags): unique, so the same
correction is stored once however many times it is posted at once. `tokens_key` is the SHA-256 of
(model, tokens): corrections sharing it with another `key` disagree, and are flagged when read (never
at insert, where two concurrent writers could each miss the other).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa

metadata = sa.MetaData()

review_items = sa.Table(
    "review_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(200), nullable=False),
    sa.Column("tokens", sa.JSON, nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("offsets", sa.JSON, nullable=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_review_items_model_confidence", "model", "confidence"),
    sa.Index("ix_review_items_created_at", "created_at"),
)

corrections = sa.Table(
    "corrections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("tokens_key", sa.String(64), nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("tokens", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("offsets", sa.JSON, nullable=True),
    sa.Column("review_id", sa.Integer, nullable=True, index=True),  # no foreign key: retention deletes items
    sa.Column("corrected_by", sa.String(200), nullable=True),
    sa.Column("version", sa.String(200), nullable=True),
    sa.Column("served_tags", sa.JSON, nullable=True),
    # added by revision 0002: tokens, and served tags a person changed, for the live accuracy estimate
    sa.Column("n_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tokens_changed", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_corrections_model_id", "model", "id"),
)


def digest(*parts: str | Sequence[str]) -> str:
    """SHA-256 of the parts as one JSON array: ("m", ["a", "b"]) never collides with ("m", ["a b"])."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()
