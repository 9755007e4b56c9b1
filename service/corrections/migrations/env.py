"""Alembic's entry point, run by `service.corrections.database.migrate` on a connection it opens.

Several replicas may start at once against one PostgreSQL: the upgrade takes a transaction-scoped
advisory lock first, so one migrates and the others wait, then find nothing left to do. On SQLite the
write transaction (BEGIN IMMEDIATE) serializes them the same way.
"""

from __future__ import annotations

from alembic import context

from service.corrections.schema import metadata

MIGRATION_LOCK = 7_302_026  # any constant shared by every replica of this service


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("the corrections store migrates online only, on the connection it opens")
run_migrations_online()
