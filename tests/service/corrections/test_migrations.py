"""The schema's versions: an upgrade from the first revision keeps and completes what was stored under it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from service.corrections import database
from service.corrections.schema import digest, metadata
from service.corrections.store import CorrectionStore


def test_upgrade_from_the_first_revision_to_head(database_url: str) -> None:
    engine = database.create(database_url)
    database.migrate(engine, "0001")
    assert database.current_revision(engine) == "0001"
    plain = [sa.column(name) for name in ("key", "tokens_key", "model", "version", "created_at")]
    lists = [sa.column(name, sa.JSON) for name in ("tokens", "tags", "served_tags")]
    v1 = sa.table("corrections", *plain, *lists)
    tokens, tags = ["Ada", "spoke"], ["B-PER", "O"]
    with engine.begin() as connection:  # a correction as the first revision stored it
        connection.execute(
            v1.insert().values(
                key=digest("en-ner", tokens, tags),
                tokens_key=digest("en-ner", tokens),
                model="en-ner",
                version="1",
                tokens=tokens,
                tags=tags,
                served_tags=["O", "O"],
                created_at=datetime.now(UTC),
            )
        )
    engine.dispose()

    store = CorrectionStore(database_url)
    store.start()  # migrates to head, as the service does at start-up
    assert database.current_revision(store.engine) == database.head_revision() != "0001"
    [counts] = store.counts()
    assert (counts.corrections, counts.tokens_compared, counts.tokens_changed) == (1, 2, 1)
    [stored] = store.corrections("en-ner")
    assert stored.correction.tags == ("B-PER", "O")
    store.close()


def test_head_matches_the_tables_the_code_queries(database_url: str) -> None:
    engine = database.create(database_url)
    database.migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


def test_migrating_twice_is_a_no_op(database_url: str) -> None:
    engine = database.create(database_url)
    database.migrate(engine)
    database.migrate(engine)
    assert database.current_revision(engine) == database.head_revision()
    engine.dispose()
