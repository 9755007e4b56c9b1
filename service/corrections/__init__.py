"""Corrections: the review queue of uncertain served sentences, and the corrections people make, in a database.

What it holds:
- `store.CorrectionStore`: the one object the service keeps (review queue, corrections, retention, purge,
  streamed export, counts for metrics), on SQLite in a file by default or PostgreSQL when a URL names one;
- `database`: the engine for either backend (SQLite pragmas for durability, PostgreSQL timeouts) and the
  Alembic migrations run at start-up (`migrations/`, the schema's versions);
- `schema`: the tables as SQLAlchemy Core sees them (the migrations are their history);
- `validation`: a correction checked against the model's tag set, a length limit and the tag scheme;
- `formats`: corrections written as CoNLL-U or IOB2 columns, the files `tagger train` reads;
- `records`: the frozen dataclasses that go in and come out;
- `errors`: `StoreUnavailable` (database down: 503 + Retry-After) and `InvalidCorrection` (422, naming the
  token; `WrongReviewItem` is one).

It imports only the torch-free core (tagger/), SQLAlchemy and its own modules: never torch, never the
HTTP layer, so the routes, the CLI and the tests use it alike.

Sync, not async: the engine is SQLAlchemy's synchronous one, and the service calls the store from a thread
pool (`anyio.to_thread.run_sync`). SQLite's driver blocks whatever the API says, an async stack would add a
second driver per backend (aiosqlite) and a second code path for the CLI, and the store's operations are
short (one transaction each) or, for the export, a generator that Starlette already iterates in a thread.
"""
