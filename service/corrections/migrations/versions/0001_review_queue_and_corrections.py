"""The review queue and the corrections, deduplicated by a unique key.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("tokens", sa.JSON, nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("offsets", sa.JSON, nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_items_model_confidence", "review_items", ["model", "confidence"])
    op.create_index("ix_review_items_created_at", "review_items", ["created_at"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("tokens_key", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("tokens", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("offsets", sa.JSON, nullable=True),
        sa.Column("review_id", sa.Integer, nullable=True),
        sa.Column("corrected_by", sa.String(200), nullable=True),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("served_tags", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_corrections_tokens_key", "corrections", ["tokens_key"])
    op.create_index("ix_corrections_review_id", "corrections", ["review_id"])
    op.create_index("ix_corrections_model_id", "corrections", ["model", "id"])


def downgrade() -> None:
    op.drop_table("corrections")
    op.drop_table("review_items")
