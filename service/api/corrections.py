"""/v1's corrections routes: the review queue (list, purge), corrections (post, export).

Mounted always, answered only when TAGGER_CORRECTIONS_DB names a database (else a 404 `corrections_off` that says
so). The store is synchronous: every call runs in a worker thread, never on the event loop, and a database that is
down is a 503 with Retry-After naming the cause, while tagging goes on. A correction is checked against the model
serving now (its tags, TAGGER_MAX_TOKENS, its scheme: a 422 naming the token), then tagged by that model, so what a
person changed is counted against the tags this version gives (`service.observability.corrections`); if the model
cannot tag it now (queue full, restarting) the correction is stored all the same, uncompared. Nothing of a
correction's contents goes to a log line or a metric label.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from service.api.correction_schemas import CorrectionRequest, CorrectionStored, Purged, ReviewEntry, ReviewList
from service.api.schemas import ErrorResponse, TagRequest
from service.corrections import formats
from service.corrections.errors import InvalidCorrection, StoreUnavailable, WrongReviewItem
from service.corrections.records import Correction, ReviewItem, Stored
from service.corrections.validation import TagRules
from service.errors import ApiError
from service.models.served import Served
from service.observability.corrections import CorrectionMetrics, ReviewCollector, create_correction_metrics
from service.pipeline import Fields, tag_current
from service.settings import Settings
from service.state import AppState, app_state

if TYPE_CHECKING:  # SQLAlchemy is imported only when a database is named (`open_corrections`)
    from service.corrections.review import ReviewWriter
    from service.corrections.store import CorrectionStore

log = logging.getLogger("tagger")
MAX_REVIEW = 500  # review items one GET lists at most
CORRECTION_FIELDS = Fields(sentences="tokens", texts="text")


@dataclass(frozen=True)
class CorrectionsRoom:
    """What the routes need, built by `service.app` when a database is named (app.state.corrections)."""

    store: CorrectionStore
    writer: ReviewWriter  # the review queue's feed (samples nothing at TAGGER_REVIEW_SAMPLE=0), and the counts
    metrics: CorrectionMetrics
    retention: timedelta

    async def start(self) -> None:
        """Migrate the schema (a database down now is retried on first use: tagging starts regardless)."""
        try:
            await to_thread.run_sync(self.store.start)
        except StoreUnavailable as err:
            log.warning("corrections: %s; retried on the first request that needs it", err)
        self.writer.start()

    async def close(self) -> None:
        await to_thread.run_sync(self.writer.close)
        self.store.close()


def open_corrections(settings: Settings, registry: CollectorRegistry) -> CorrectionsRoom | None:
    """The store, the review writer and the metrics when TAGGER_CORRECTIONS_DB is set; None when it is not."""
    if settings.corrections_db is None:
        return None
    from service.corrections.review import ReviewWriter
    from service.corrections.store import CorrectionStore

    store = CorrectionStore(settings.corrections_db.get_secret_value())
    retention = timedelta(hours=settings.review_retention_h)
    writer = ReviewWriter(store, settings.review_sample, settings.review_backlog, retention)
    counts = writer.counts
    registry.register(
        ReviewCollector(
            lambda: counts.by_model.copy(),
            lambda: writer.backlog,
            lambda: [(c.model, c.version, c.corrections, c.tokens_compared, c.tokens_changed) for c in counts.stored],
        )
    )
    return CorrectionsRoom(store, writer, create_correction_metrics(registry), retention)


def _statuses(*codes: int, extra: dict[int, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """What a route answers besides its success: ErrorResponse bodies (and `extra` as given)."""
    documented: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in codes}
    return documented | (extra or {})


class SharedPathRoute(APIRoute):
    """A route whose 405 names every method its path serves: GET and POST .../corrections are two routes, and
    Starlette's 405 would name only the first one's methods in Allow."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            siblings = [r for r in router.routes if isinstance(r, APIRoute) and r.path == self.path]
            allowed = sorted({method for r in siblings for method in (r.methods or ())})
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(allowed)})
        await super().handle(scope, receive, send)


# JSON POSTs (the body kind by default): the body guard checks them (service.edge.bodies)
router = APIRouter(route_class=SharedPathRoute)


STORED_BEFORE: dict[str, Any] = {"model": CorrectionStored, "description": "stored before: the first one's id"}
ExportFormat = Literal["conllu", "iob2"]
EXPORTED: dict[str, Any] = {
    "description": "CoNLL-U or IOB2 columns, the files `tagger train` and `tagger finetune` read",
    "content": {"text/x-conllu": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}},
}
Conflicts = Literal["latest", "all", "skip"]


def room(request: Request) -> CorrectionsRoom:
    found: CorrectionsRoom | None = getattr(request.app.state, "corrections", None)
    if found is None:
        message = "corrections are off on this server: set TAGGER_CORRECTIONS_DB to a file path or a postgresql:// URL"
        raise ApiError(404, "corrections_off", message, "model")
    return found


def unavailable(err: StoreUnavailable, backend: str) -> ApiError:
    """503 + Retry-After saying which database is down; where it is (host, user) and the driver's words go to the
    log, for the operator, not to every client."""
    log.warning("corrections: %s", err)
    message = (
        f"the corrections database ({backend}) is unavailable: nothing was stored or read; retry after "
        f"{err.retry_after} s (the server's log names the cause); tagging is not affected"
    )
    return ApiError(503, "corrections_unavailable", message, headers={"Retry-After": str(err.retry_after)})


async def in_thread(corrections: CorrectionsRoom, function: Any, *args: Any) -> Any:
    """A store call in a worker thread; a database that is down is a 503."""
    try:
        return await to_thread.run_sync(function, *args)
    except StoreUnavailable as err:
        raise unavailable(err, corrections.store.engine.dialect.name) from None


@router.get(
    "/v1/models/{model}/review",
    summary="The review queue: the least confident recent sentences",
    responses=_statuses(401, 404, 422, 429, 503),
)
async def review(model: str, request: Request, limit: Annotated[int, Query(ge=1, le=MAX_REVIEW)] = 20) -> ReviewList:
    """Sentences served by the model (a sampled share, TAGGER_REVIEW_SAMPLE), least confident first, kept within
    TAGGER_REVIEW_RETENTION_H and not yet answered by a correction."""
    corrections, served = room(request), app_state(request).served(model)
    since = datetime.now(UTC) - corrections.retention
    items: list[ReviewItem] = await in_thread(corrections, corrections.store.review_queue, served.name, limit, since)
    return ReviewList(model=served.name, items=[_entry(item) for item in items])


def _entry(item: ReviewItem) -> ReviewEntry:
    s = item.served
    offsets = None if s.offsets is None else [list(pair) for pair in s.offsets]
    return ReviewEntry(
        id=item.id,
        created_at=item.created_at,
        model=s.model,
        version=s.version,
        tokens=list(s.tokens),
        tags=list(s.tags),
        confidence=s.confidence,
        text=s.text,
        offsets=offsets,
    )


@router.delete(
    "/v1/models/{model}/review",
    summary="Purge the review queue",
    responses=_statuses(401, 404, 429, 503),
)
async def purge_review(model: str, request: Request) -> Purged:
    """Forget every sentence queued for review of this model (a model no longer served included); corrections
    stay."""
    corrections = room(request)
    purged: int = await in_thread(corrections, corrections.store.purge_review, model)
    return Purged(model=model, purged=purged)


def rules(served: Served, state: AppState) -> TagRules:
    return TagRules(served.output_tags, "IOB2" if served.spans else None, state.settings.max_tokens)


def _correction(model: str, body: CorrectionRequest) -> Correction:
    offsets = None if body.offsets is None else tuple((pair[0], pair[1]) for pair in body.offsets)
    return Correction(
        model=model,
        tokens=tuple(body.tokens),
        tags=tuple(body.tags),
        text=body.text,
        offsets=offsets,
        review_id=body.review_id,
        corrected_by=body.corrected_by,
    )


def invalid(err: InvalidCorrection) -> ApiError:
    """422 naming the field and token: tags[i] for a tag, offsets[i] or tokens[i] otherwise."""
    if isinstance(err, WrongReviewItem):
        return ApiError(422, "invalid_correction", str(err), "review_id")
    if err.index is None:
        field = "offsets" if "offset" in err.reason else "tags" if "tag" in err.reason else "tokens"
    else:
        where = "tags" if err.tag is not None else "offsets" if "offset" in err.reason else "tokens"
        field = f"{where}[{err.index}]"
    return ApiError(422, "invalid_correction", str(err), field)


async def _served_tags(state: AppState, model: str, correction: Correction, request: Request) -> tuple[str, list[str]]:
    """The serving version and its tags for the correction's tokens (run as a tag request is)."""
    body = TagRequest.model_validate({"sentences": [list(correction.tokens)]})
    served, _, tagged = await tag_current(state, model, body, request, fields=CORRECTION_FIELDS, live=False)
    return served.version, tagged[0].tags


@router.post(
    "/v1/models/{model}/corrections",
    summary="Store a correction",
    status_code=201,
    responses=_statuses(400, 401, 404, 413, 415, 422, 429, 503, extra={200: STORED_BEFORE}),
)
async def add_correction(model: str, body: CorrectionRequest, request: Request) -> JSONResponse:
    """Tokens with the right tags: checked against the model serving (its tag set, TAGGER_MAX_TOKENS, its scheme;
    a 422 names the token), stored once (the same tokens and tags again: 200 with the first one's id), a
    disagreement with an earlier correction of the same tokens kept and flagged (`conflict`). 201 once it is
    committed: it survives a crash of the server from then on."""
    corrections, state = room(request), app_state(request)
    served = state.served(model)
    correction = _correction(served.name, body)
    try:
        rules(served, state).check(correction)
    except InvalidCorrection as err:
        raise invalid(err) from None
    version, served_tags = None, None
    try:
        version, served_tags = await _served_tags(state, served.name, correction, request)
    except ApiError as err:
        if err.detail.status not in (503, 504):
            raise  # a limit of the tag path (a token too long): the same refusal as tagging it
    if served_tags is not None:
        correction = replace(correction, version=version, served_tags=tuple(served_tags))
    try:
        stored: Stored = await in_thread(
            corrections, corrections.store.add_correction, correction, rules(served, state)
        )
    except InvalidCorrection as err:
        raise invalid(err) from None
    changed = None if served_tags is None else sum(a != b for a, b in zip(correction.tags, served_tags, strict=True))
    compared = 0 if served_tags is None else len(correction.tokens)
    corrections.metrics.count(served.name, version or "", stored.created, compared, changed or 0)
    corrections.writer.counts_changed()
    answer = CorrectionStored(
        id=stored.id, created=stored.created, conflict=stored.conflict, version=version, tokens_changed=changed
    )
    return JSONResponse(answer.model_dump(), status_code=201 if stored.created else 200)


@router.get(
    "/v1/models/{model}/corrections",
    summary="Export the corrections, streamed",
    response_class=StreamingResponse,
    responses=_statuses(401, 404, 422, 429, 503, extra={200: EXPORTED}),
)
async def export_corrections(
    model: str,
    request: Request,
    format: Annotated[ExportFormat, Query(description="conllu, or iob2 (token<TAB>tag)")] = "conllu",
    conflicts: Annotated[
        Conflicts, Query(description="latest: the newest of disagreeing corrections; all: each; skip: none of them")
    ] = "latest",
) -> StreamingResponse:
    """Every correction of the model, one sentence a block, streamed from the database in bounded memory (each
    opens with `# correction_id = N`, and `# conflict = yes` when another correction of its tokens disagrees)."""
    corrections, served = room(request), app_state(request).served(model)
    chunks = corrections.store.export(served.name, format, conflicts, served.spans)
    first: list[str] = await in_thread(
        corrections, _first, chunks
    )  # a database that is down is a 503, not a cut stream
    media = formats.MEDIA_TYPES[format]
    filename = f"{model}-corrections.{'conllu' if format == 'conllu' else 'iob2'}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(chain(first, chunks), media_type=media, headers=headers)


def _first(chunks: Iterator[str]) -> list[str]:
    """The export's first sentence (its query run), or none."""
    chunk = next(chunks, None)
    return [] if chunk is None else [chunk]
