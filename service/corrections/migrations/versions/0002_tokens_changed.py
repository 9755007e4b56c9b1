"""Counts for the live accuracy estimate: each correction's tokens, and the served tags a person changed.

Rows stored under 0001 are filled in from their tokens, tags and served tags, so the counts cover them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_corrections = sa.table(
    "corrections",
    sa.column("id", sa.Integer),
    sa.column("tags", sa.JSON),
    sa.column("served_tags", sa.JSON),
    sa.column("n_tokens", sa.Integer),
    sa.column("tokens_changed", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("n_tokens", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("tokens_changed", sa.Integer, nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(_corrections.c.id, _corrections.c.tags, _corrections.c.served_tags))
    for row_id, tags, served in rows.all():
        changed = sum(a != b for a, b in zip(tags, served, strict=True)) if served is not None else None
        connection.execute(
            _corrections.update().where(_corrections.c.id == row_id).values(n_tokens=len(tags), tokens_changed=changed)
        )


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("tokens_changed")
        batch.drop_column("n_tokens")
