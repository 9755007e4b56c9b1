"""The corrections store: the review queue, corrections, retention, export and counts, on one engine.

Every method is one short transaction (the export: one read, streamed) and blocking: the service calls
them from a thread pool. Every driver failure comes out as `StoreUnavailable`. The schema is migrated to
head the first time the store is used (`start`), and again on the next call if the database was down
then, so a service can start before its database and recover when it comes up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine

from service.corrections import database, formats
from service.corrections.errors import WrongReviewItem
from service.corrections.records import Correction, Counts, ReviewItem, Served, Stored, StoredCorrection
from service.corrections.schema import corrections, digest, review_items
from service.corrections.validation import TagRules

Conflicts = Literal["all", "latest", "skip"]
# statements built once (SQLAlchemy caches their compiled form), given their values when run
_BY_KEY = sa.select(corrections.c.id).where(corrections.c.key == sa.bindparam("k"))
_OTHER_TAGS = (
    sa.select(sa.func.count())
    .select_from(corrections)
    .where(corrections.c.tokens_key == sa.bindparam("t"), corrections.c.key != sa.bindparam("k"))
)
EXPORT_BATCH = 500  # rows fetched at a time by the export's server-side cursor


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """Datetimes come back naive from SQLite; every one stored is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _offsets(value: Any) -> tuple[tuple[int, int], ...] | None:
    return None if value is None else tuple((int(a), int(b)) for a, b in value)


class CorrectionStore:
    """Review queue and corrections in SQLite (a file path or sqlite:// URL) or PostgreSQL (postgresql:// URL)."""

    def __init__(self, url: str | Path | URL, connect_timeout: int = 3) -> None:
        self.engine: Engine = database.create(url, connect_timeout)
        self._migrated = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Migrate the schema to head; raises `StoreUnavailable` if the database cannot be reached."""
        with self._lock:
            if not self._migrated:
                database.migrate(self.engine)
                self._migrated = True

    def close(self) -> None:
        self.engine.dispose()

    def _write(self) -> Any:
        self.start()
        return self.engine.connect().execution_options(**database.WRITE)

    def _read(self) -> Any:
        self.start()
        return self.engine.connect()

    # -- the review queue ------------------------------------------------------------------------------

    def add_review_items(self, items: Sequence[Served]) -> list[int]:
        """Keep sampled served sentences, in one transaction; returns their ids in order."""
        if not items:
            return []
        now = _now()
        rows = [
            {
                "model": item.model,
                "version": item.version,
                "tokens": list(item.tokens),
                "text": item.text,
                "offsets": None if item.offsets is None else [list(o) for o in item.offsets],
                "tags": list(item.tags),
                "confidence": float(item.confidence),
                "created_at": now,
            }
            for item in items
        ]
        insert = review_items.insert().returning(review_items.c.id, sort_by_parameter_order=True)
        with database.reachable(self.engine), self._write() as connection, connection.begin():
            return [int(i) for i in connection.execute(insert, rows).scalars()]

    def review_queue(self, model: str, limit: int = 20, since: datetime | None = None) -> list[ReviewItem]:
        """The least confident sentences of `model` kept since `since` (all kept ones if None), not yet corrected."""
        answered = sa.exists().where(corrections.c.review_id == review_items.c.id)
        query = sa.select(review_items).where(review_items.c.model == model, ~answered)
        if since is not None:
            query = query.where(review_items.c.created_at >= since)
        query = query.order_by(review_items.c.confidence, review_items.c.id.desc()).limit(max(0, limit))
        with database.reachable(self.engine), self._read() as connection:
            rows = connection.execute(query).mappings().all()
        return [_review_item(row) for row in rows]

    def delete_review_older_than(self, age: timedelta) -> int:
        """Retention: forget queued sentences kept longer than `age`; returns how many."""
        with database.reachable(self.engine), self._write() as connection, connection.begin():
            cut = _now() - age
            return int(connection.execute(review_items.delete().where(review_items.c.created_at < cut)).rowcount)

    def purge_review(self, model: str | None = None) -> int:
        """Forget the whole queue (of one model, if given); corrections stay. Returns how many items went."""
        query = review_items.delete()
        if model is not None:
            query = query.where(review_items.c.model == model)
        with database.reachable(self.engine), self._write() as connection, connection.begin():
            return int(connection.execute(query).rowcount)

    # -- corrections -----------------------------------------------------------------------------------

    def add_correction(self, correction: Correction, rules: TagRules) -> Stored:
        """Validate and store a correction once; the same model, tokens and tags again return the first row.

        Raises `InvalidCorrection` (naming the token) before touching the database, `WrongReviewItem`
        for a review item of another model, `StoreUnavailable` when the database is down. Once this
        returns, the correction is committed (see `database` for what that survives).
        """
        return self.add_corrections([correction], rules)[0]

    def add_corrections(self, items: Sequence[Correction], rules: TagRules) -> list[Stored]:
        """Several corrections in one transaction: all are validated first, and stored all or none."""
        for correction in items:
            rules.check(correction)
        with database.reachable(self.engine), self._write() as connection, connection.begin():
            return [self._add(connection, correction) for correction in items]

    def _add(self, connection: Any, correction: Correction) -> Stored:
        if correction.review_id is not None:
            self._check_review_item(connection, correction)
        row = _correction_row(correction)
        inserted = connection.execute(self._insert_once, row).first()
        existing = connection.execute(_BY_KEY, {"k": row["key"]}).scalar_one()
        conflict = connection.execute(_OTHER_TAGS, {"k": row["key"], "t": row["tokens_key"]}).scalar_one()
        return Stored(id=int(existing), created=inserted is not None, conflict=bool(conflict))

    @cached_property
    def _insert_once(self) -> Any:
        """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id: both backends spell it alike."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(corrections).on_conflict_do_nothing(index_elements=["key"]).returning(corrections.c.id)

    @staticmethod
    def _check_review_item(connection: Any, correction: Correction) -> None:
        query = sa.select(review_items.c.model).where(review_items.c.id == correction.review_id)
        model = connection.execute(query).scalar_one_or_none()
        if model is not None and model != correction.model:
            raise WrongReviewItem(f"review item {correction.review_id} is in {model}'s queue, not {correction.model}'s")

    def corrections(self, model: str, conflicts: Conflicts = "all", after_id: int = 0) -> Iterator[StoredCorrection]:
        """Corrections of `model` in the order they came, streamed with a server-side cursor.

        conflicts: "all" keeps every correction (each flagged), "latest" keeps the newest of each
        disagreeing group (a later correction supersedes), "skip" leaves out every disagreeing one.
        The connection stays open while the iterator runs; close the iterator to free it early.
        """
        query = _export_query(model, conflicts, after_id)
        with database.reachable(self.engine), self._read() as connection:
            result = connection.execution_options(yield_per=EXPORT_BATCH).execute(query).mappings()
            for row in result:
                yield _stored_correction(row)

    def export(
        self, model: str, fmt: formats.Format, conflicts: Conflicts = "latest", spans: bool | None = None
    ) -> Iterator[str]:
        """The corrections of `model` as a CoNLL-U or IOB2 file, one sentence a chunk, in bounded memory.

        `spans`: whether the model's tags are span tags (NER= in CoNLL-U's MISC); None reads it off the
        first correction's tags.
        """
        if fmt not in formats.FORMATS:
            raise ValueError(f"format must be one of {', '.join(formats.FORMATS)}, got {fmt!r}")
        for stored in self.corrections(model, conflicts):
            if spans is None:
                spans = formats.span_tags(stored.correction.tags)
            yield formats.sentence(stored, fmt, spans)

    def counts(self) -> list[Counts]:
        """Corrections, tokens compared and tokens changed, per model and served version."""
        version = sa.func.coalesce(corrections.c.version, "")
        compared = sa.case((corrections.c.tokens_changed.is_(None), 0), else_=corrections.c.n_tokens)
        query = sa.select(
            corrections.c.model,
            version.label("version"),
            sa.func.count().label("corrections"),
            sa.func.coalesce(sa.func.sum(compared), 0).label("tokens_compared"),
            sa.func.coalesce(sa.func.sum(corrections.c.tokens_changed), 0).label("tokens_changed"),
        ).group_by(corrections.c.model, version)
        with database.reachable(self.engine), self._read() as connection:
            rows = connection.execute(query).mappings().all()
        return sorted(
            (
                Counts(r["model"], r["version"], r["corrections"], r["tokens_compared"], r["tokens_changed"])
                for r in rows
            ),
            key=lambda c: (c.model, c.version),
        )

    def purge_corrections(self, model: str | None = None) -> int:
        """Forget every correction (of one model, if given); returns how many."""
        query = corrections.delete()
        if model is not None:
            query = query.where(corrections.c.model == model)
        with database.reachable(self.engine), self._write() as connection, connection.begin():
            return int(connection.execute(query).rowcount)


def _export_query(model: str, conflicts: Conflicts, after_id: int) -> sa.Select[Any]:
    """Corrections with their conflict flag: a window over each (model, tokens) group counts its variants."""
    variants = sa.func.count().over(partition_by=corrections.c.tokens_key)
    newest = sa.func.row_number().over(partition_by=corrections.c.tokens_key, order_by=corrections.c.id.desc())
    inner = (
        sa.select(corrections, variants.label("variants"), newest.label("newest"))
        .where(corrections.c.model == model)
        .subquery()
    )
    query = sa.select(inner).where(inner.c.id > after_id)
    if conflicts == "latest":
        query = query.where(inner.c.newest == 1)
    elif conflicts == "skip":
        query = query.where(inner.c.variants == 1)
    return query.order_by(inner.c.id)


def _correction_row(correction: Correction) -> dict[str, Any]:
    served = correction.served_tags
    return {
        "key": digest(correction.model, correction.tokens, correction.tags),
        "tokens_key": digest(correction.model, correction.tokens),
        "model": correction.model,
        "tokens": list(correction.tokens),
        "tags": list(correction.tags),
        "text": correction.text,
        "offsets": None if correction.offsets is None else [list(o) for o in correction.offsets],
        "review_id": correction.review_id,
        "corrected_by": correction.corrected_by,
        "version": correction.version,
        "served_tags": None if served is None else list(served),
        "n_tokens": len(correction.tokens),
        "tokens_changed": None if served is None else sum(a != b for a, b in zip(correction.tags, served, strict=True)),
        "created_at": _now(),
    }


def _review_item(row: Any) -> ReviewItem:
    served = Served(
        model=row["model"],
        version=row["version"],
        tokens=tuple(row["tokens"]),
        tags=tuple(row["tags"]),
        confidence=float(row["confidence"]),
        text=row["text"],
        offsets=_offsets(row["offsets"]),
    )
    return ReviewItem(id=int(row["id"]), created_at=_utc(row["created_at"]), served=served)


def _stored_correction(row: Any) -> StoredCorrection:
    served = row["served_tags"]
    correction = Correction(
        model=row["model"],
        tokens=tuple(row["tokens"]),
        tags=tuple(row["tags"]),
        text=row["text"],
        offsets=_offsets(row["offsets"]),
        review_id=row["review_id"],
        corrected_by=row["corrected_by"],
        version=row["version"],
        served_tags=None if served is None else tuple(served),
    )
    return StoredCorrection(int(row["id"]), _utc(row["created_at"]), correction, conflict=row["variants"] > 1)
