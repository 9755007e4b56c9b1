"""One engine for either backend, the schema migrated to head, and driver failures as `StoreUnavailable`.

SQLite (the default: a file, nothing to install) and PostgreSQL (several replicas, one database) go
through the same SQLAlchemy Core statements; what differs is set here, once:

SQLite durability. An acknowledged correction is a committed transaction, and it must survive kill -9
of the server. The file runs in WAL mode with `synchronous=FULL`: each commit appends to the WAL and
fsyncs it before COMMIT returns. WAL with `NORMAL` would already survive kill -9 (the WAL pages are in
the OS cache when COMMIT returns, and the OS writes them whatever becomes of the process), but not a
power cut or a kernel crash, which can lose the last commits until a checkpoint syncs them. FULL costs
one fsync per commit (about a millisecond on a local disk), which corrections (typed by people) and the
review queue (a sampled share of requests, one transaction per batch) can afford. Checkpoints are left
to SQLite's automatic ones (every 1,000 WAL pages); a reader never blocks the writer in WAL.
Write transactions open with BEGIN IMMEDIATE, so concurrent writers queue on the busy timeout instead of
failing on a stale read snapshot (pysqlite's own deferred BEGIN would); reads open a plain BEGIN so an
export does not hold the write lock.

PostgreSQL: the URL `postgresql://...` is given psycopg 3 as its driver; connections time out after
`connect_timeout` seconds so a database that is down fails fast, and the pool checks a connection before
lending it (a restarted server is reconnected to, not reported). Commits are durable by the server's
own `synchronous_commit=on` default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from service.corrections.errors import StoreUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 5_000  # SQLite: how long a writer waits for another's lock before StoreUnavailable
WRITE = {"corrections_write": True}  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)


def database_url(value: str | Path) -> URL:
    """A URL for SQLAlchemy from a setting: a URL as given (postgresql:// -> psycopg 3), or a file path.

    "corrections.db" -> sqlite:///corrections.db; "postgresql://u@h/db" -> postgresql+psycopg://u@h/db
    """
    text = str(value)
    url = make_url(text) if "://" in text else URL.create("sqlite", database=text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"the corrections database must be SQLite or PostgreSQL, got {url.get_backend_name()!r}")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError("the corrections database needs a file (an in-memory SQLite loses what it was told)")
    return url


def create(url: str | Path | URL, connect_timeout: int = 3) -> Engine:
    """An engine for `url` with the backend's settings above; connects lazily, on first use."""
    url = url if isinstance(url, URL) else database_url(url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args = {"connect_timeout": max(2, connect_timeout)}  # libpq treats less than 2 s as 2
    return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by `_sqlite_begin`, not by pysqlite
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    writes = connection.get_execution_options().get("corrections_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@contextlib.contextmanager
def reachable(engine: Engine) -> Iterator[None]:
    """Turn any driver failure inside the block into `StoreUnavailable`, naming the backend only."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as err:
        backend = engine.url.get_backend_name()
        where = engine.url.render_as_string(hide_password=True)
        first = str(getattr(err, "orig", err)).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StoreUnavailable(f"the corrections database ({backend} at {where}) is unavailable: {first}") from err


def _script_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _alembic_config(connection: Connection) -> AlembicConfig:
    config = _script_config()
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (head by default) in one transaction; a no-op when it is there."""
    with reachable(engine), engine.connect() as connection:
        command.upgrade(_alembic_config(connection.execution_options(**WRITE)), revision)
        connection.commit()


def current_revision(engine: Engine) -> str | None:
    """The schema's revision in the database (None for an empty one)."""
    with reachable(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision in migrations/versions/."""
    head = ScriptDirectory.from_config(_script_config()).get_current_head()
    assert head is not None
    return head
