"""The request path, once for /v1, /v2 and the fast path: prepare -> submit -> results.

    prepare   check every limit (`service.limits`), tokenize texts, encode each sentence to ids
    submit    hand the sentences to the model's batcher (`service.inference`), which batches them fairly with
              everyone else's and runs them in the model's inference process
    results   wait for each sentence's `Tagged` (deadline, disconnect, refusals -> 504, 499, 503), put them back
              in input order; `service.results` turns them into typed `SentenceResult`s that /v1
              (`service.api.answers`) and /v2 (`service.oip.outputs`) each render in their own terms

A sentence takes four forms on the way: a token list (or a text and its tokens), `Encoded` ids, the `Tagged`
result from the inference process, and a `SentenceResult`. Everything here is checked before anything is queued,
so a refused request costs the batch nothing and never shares a batch with anyone.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from starlette.requests import Request

from service.api.schemas import TagRequest
from service.errors import ApiError
from service.inference.admission import DeadlineExceeded, Draining, Overloaded, ProcessLost, QueueFull, TooSlow
from service.limits import check_format, check_tokens, check_unicode, read_document, too_many
from service.models.served import Served
from service.settings import Settings
from service.state import AppState
from tagger.conllu import Document
from tagger.decoding import Tagged
from tagger.encoding import Encoded, Vocab
from tagger.tokenizer import tokenize


@dataclass(frozen=True)
class Fields:
    """What the caller calls the request's parts, for the refusals: /v1's names by default."""

    sentences: str = "sentences"
    texts: str = "texts"
    top_k: str = "top_k"


V1 = Fields()


@dataclass(frozen=True)
class Prepared:
    """A request's sentences, ready to queue, with what the response needs to point back."""

    tokens: list[list[str]]  # per input; a blank text has none
    offsets: list[list[tuple[int, int]]] | None  # per input, when the input was text
    encoded: list[Encoded]  # the inputs with tokens, in order: what is queued
    total_tokens: int
    document: Document | None = None  # conllu input, to fill in


def prepare(request: TagRequest, vocab: Vocab, settings: Settings, fields: Fields = V1) -> Prepared:
    """Check the request against the limits, tokenize texts, encode every sentence."""
    check_format(request)
    document = None
    if request.conllu is not None:
        check_unicode("conllu", request.conllu, lines=True)
        document = read_document(request.conllu, settings)
        request = request.model_copy(update={"sentences": [list(s.forms) for s in document.sentences], "conllu": None})
    inputs = request.sentences if request.sentences is not None else request.texts
    assert inputs is not None
    name = "conllu" if document is not None else fields.sentences if request.sentences is not None else fields.texts
    if len(inputs) > settings.max_sentences:
        raise too_many(name, "items", len(inputs), settings.max_sentences, "TAGGER_MAX_SENTENCES")
    if request.top_k > settings.max_top_k:
        message = f"{fields.top_k} is {request.top_k}; the limit is {settings.max_top_k} (TAGGER_MAX_TOP_K)"
        raise ApiError(422, "top_k_too_large", message, fields.top_k)
    offsets: list[list[tuple[int, int]]] | None = None
    if request.sentences is not None:
        tokens = request.sentences
        for i, sentence in enumerate(tokens):
            field = f"{fields.sentences}[{i}]"
            if not sentence:
                raise ApiError(422, "empty_sentence", f"{field} has no tokens", field)
            check_tokens(field, sentence, settings)
    else:
        assert request.texts is not None
        tokens, offsets = [], []
        for i, text in enumerate(request.texts):
            field = f"{fields.texts}[{i}]"
            if len(text) > settings.max_text_chars:
                raise too_many(field, "characters", len(text), settings.max_text_chars, "TAGGER_MAX_TEXT_CHARS")
            check_unicode(field, text)
            found = tokenize(text)  # a blank text has no tokens: its result is empty, in its place
            tokens.append([t.text for t in found])
            offsets.append([(t.start, t.end) for t in found])
            # the tokenizer's tokens are never blank, their text was checked whole, and a long one costs
            # the model no more than a short one (it reads a word's first and last characters): only count them
            if len(tokens[-1]) > settings.max_tokens:
                raise too_many(field, "tokens", len(tokens[-1]), settings.max_tokens, "TAGGER_MAX_TOKENS")
    total = sum(len(s) for s in tokens)
    if total > settings.max_request_tokens:
        raise too_many(name, "tokens", total, settings.max_request_tokens, "TAGGER_MAX_REQUEST_TOKENS")
    values = total * (1 + request.top_k)
    if values > settings.max_response_values:
        raise ApiError(
            422,
            "response_too_large",
            f"{total} tokens with {fields.top_k} {request.top_k} make {values} values in the answer; the limit is "
            f"{settings.max_response_values} (TAGGER_MAX_RESPONSE_VALUES): send fewer tokens or a smaller top_k",
            fields.top_k if request.top_k else name,
        )
    encoded = [vocab.encode_sentence(s) for s in tokens if s]
    return Prepared(tokens=tokens, offsets=offsets, encoded=encoded, total_tokens=total, document=document)


async def tag_current(
    state: AppState,
    name: str,
    body: TagRequest,
    request: Request,
    check: Callable[[Served, Prepared], None] | None = None,
    fields: Fields = V1,
    live: bool = True,
) -> tuple[Served, Prepared, list[Tagged]]:
    """Prepare and run a request on the model's version serving now; `check` sees it before it is queued.

    A swap does not fail a request: one queued on the old version and refused
    by it as it drains (its sentences waited for an inference process that the
    drain stopped) runs once more, on the new version (prepared again: the
    vocabularies may differ). The lookup and the queueing happen without
    yielding in between, so a request runs wholly on one version. `live`: a user's request, fed to the review
    queue, the drift statistics and the model's shadow (not the service's own tagging of a correction).
    """
    for last in (False, True):
        served = state.served(name)
        prepared = prepare(body, served.vocab, state.settings, fields)
        if check is not None:
            check(served, prepared)
        started = time.perf_counter()
        try:
            tagged = await submit(served, body, prepared, request, state.settings, fields, live)
        except ApiError as err:
            replaced = err.detail.reason == "draining" and not state.draining and state.models.get(name) is not served
            if last or not replaced:
                raise
        else:
            if live:
                offer_for_review(request, served, body, prepared, tagged)
            if live and state.shadows is not None:  # a copy for the model's shadow, run after this answer is sent
                state.shadows.offer(served, prepared.tokens, tagged, time.perf_counter() - started)
            return served, prepared, tagged
    raise AssertionError("unreachable")


class ReviewHook(Protocol):
    """The review queue's feed (`service.corrections.review.ReviewWriter`, app.state.review when it is on)."""

    def offer(
        self,
        model: str,
        version: str,
        tokens: Sequence[Sequence[str]],
        texts: Sequence[str] | None,
        offsets: Sequence[Sequence[tuple[int, int]]] | None,
        tagged: Sequence[Tagged],
    ) -> None: ...


def offer_for_review(
    request: Request, served: Served, body: TagRequest, prepared: Prepared, tagged: list[Tagged]
) -> None:
    """Hand the answered sentences to the review queue, which samples them and never blocks (off: nothing)."""
    app = request.scope.get("app")
    hook: ReviewHook | None = getattr(app.state, "review", None) if app is not None else None
    if hook is not None:
        texts = body.texts if prepared.offsets is not None else None
        hook.offer(served.name, served.version, prepared.tokens, texts, prepared.offsets, tagged)


async def submit(
    served: Served,
    body: TagRequest,
    prepared: Prepared,
    request: Request,
    settings: Settings,
    fields: Fields = V1,
    live: bool = True,
) -> list[Tagged]:
    """Queue a prepared request and wait for its results, one per input (an empty one for a blank text)."""
    request.state.tagged = (len(prepared.tokens), prepared.total_tokens)  # for the access log
    try:
        deadline = time.perf_counter() + settings.request_timeout_s
        details = body.scores or body.top_k > 0
        futures = served.batcher.submit(prepared.encoded, deadline, details=details) if prepared.encoded else []
    except TooSlow as err:
        field = fields.sentences if body.sentences is not None else fields.texts
        raise ApiError(422, "request_too_slow", str(err), field) from None
    except (QueueFull, Draining, ProcessLost, Overloaded) as err:
        raise refused(err) from None
    if live and served.drift is not None and prepared.encoded:  # queued: its tokens count (outputs where they run)
        served.drift.count_input([tokens for tokens in prepared.tokens if tokens])
    answers = await wait_for_results(futures, request, settings.request_timeout_s) if futures else []
    return placed(prepared, answers, len(served.output_tags))


# A request whose results take longer than this starts watching for its client
# to leave. Most answer sooner (a lone request runs at once), and a watcher task
# per request (created, then cancelled) costs the event loop about 20 us
# (measured alone; within noise in the load benchmark). Sentences of a client
# gone in the first 50 ms are in a batch already.
DISCONNECT_GRACE_S = 0.05


async def wait_for_results(futures: Sequence[asyncio.Future[Tagged]], request: Request, timeout: float) -> list[Tagged]:
    """Wait for every sentence's result; give up (and free the queue) on deadline or disconnect."""
    loop = asyncio.get_running_loop()
    gathered: asyncio.Future[Any] = asyncio.gather(*futures) if len(futures) > 1 else futures[0]
    gave_up: list[bool] = []  # set when the timer (deadline) or the watcher (disconnect) cancelled `gathered`

    def give_up(disconnected: bool) -> None:
        if not gathered.done():
            gave_up.append(disconnected)
            gathered.cancel()  # queued sentences of this request are dropped before they run

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        give_up(True)

    watchers: list[asyncio.Task[None]] = []
    timers = [
        loop.call_later(timeout, give_up, False),
        loop.call_later(DISCONNECT_GRACE_S, lambda: watchers.append(loop.create_task(watch()))),
    ]
    try:
        done = await gathered
    except asyncio.CancelledError:
        if not gave_up:
            raise  # the server cancelled this request's task
        if gave_up[0]:
            raise ApiError(499, "client_disconnected", "the client closed the connection before its result") from None
        raise deadline_exceeded(timeout) from None
    except DeadlineExceeded:
        raise deadline_exceeded(timeout) from None
    except (QueueFull, Draining, ProcessLost) as err:
        raise refused(err) from None
    finally:
        for timer in timers:
            timer.cancel()
        for watcher in watchers:
            watcher.cancel()
        for future in futures:  # after a failure, sentences still queued are dropped before they run
            future.cancel()
    return list(done) if len(futures) > 1 else [done]


def refused(err: QueueFull | Draining | ProcessLost | Overloaded) -> ApiError:
    """503s, each with the Retry-After that fits it."""
    if isinstance(err, Overloaded):
        return ApiError(503, "overloaded", str(err), headers={"Retry-After": str(max(1, math.ceil(err.retry_after)))})
    if isinstance(err, QueueFull):
        return ApiError(503, "queue_full", str(err), headers={"Retry-After": "1"})
    if isinstance(err, Draining):
        return ApiError(503, "draining", str(err), headers={"Retry-After": "5"})
    return ApiError(503, "inference_restarting", f"{err}; retry", headers={"Retry-After": "2"})


def deadline_exceeded(timeout: float) -> ApiError:
    return ApiError(504, "deadline_exceeded", f"no result within {timeout:g} s (TAGGER_REQUEST_TIMEOUT_S)")


def placed(prepared: Prepared, tagged: list[Tagged], labels: int) -> list[Tagged]:
    """One result per input: the model's for those with tokens, an empty one for blank texts.

    `labels` is the number of output tags (top_k's columns), for the empty marginals.
    """
    if len(tagged) == len(prepared.tokens):
        return tagged  # no blank text: the answers as they are
    answers, empty = iter(tagged), Tagged([], (), np.empty(0), np.empty((0, labels)))
    return [next(answers) if tokens else empty for tokens in prepared.tokens]
