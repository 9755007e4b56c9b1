"""Shadow versions: a candidate export run beside the version serving, on copies of live requests, then promoted
through the repository's own swap, or discarded.

The convention: a candidate for model NAME is an export folder under `<models>/.shadows/` whose metadata names
NAME (the repository reads only the models folder's direct subfolders, so it never serves one by mistake). It is
loaded by `POST /v2/repository/models/NAME/shadow/load`, or found by the poll (TAGGER_MODEL_POLL_S); it runs in
an inference process of its own, loaded and warmed up like any version, and a failed load is reported as any
failed load is (the log, `tagger_model_changes_total{change="failed"}`, a 400 to the load request).

A share of the requests for NAME (TAGGER_SHADOW_SHARE) is copied to it after the serving version has answered:
the copy is scheduled, never awaited, by the request, and the answer is neither delayed nor changed. Its queue is
bounded (TAGGER_SHADOW_QUEUE sentences): when it is behind, copies are dropped and counted. Promoting moves the
candidate's folder into the serving one's place (the old folder goes to `<models>/.retired/`) and loads it
through `Repository.load`: the old version drains, nothing is lost, and a restart serves the promoted version.
A restart starts with no shadow unless a candidate folder is there and polling is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from service.errors import ApiError
from service.inference.admission import Draining, Overloaded, ProcessLost, QueueFull, TooSlow
from service.models.folders import Found, fingerprint, scan
from service.models.repository import LOAD_TIMEOUT_S, Repository
from service.models.served import Served, build_served
from service.observability.metrics import Metrics
from service.observability.shadow import Agreement
from service.settings import Settings
from tagger.decoding import Tagged

log = logging.getLogger("tagger")
SHADOWS = ".shadows"
RETIRED = ".retired"


@dataclass
class Shadow:
    served: Served
    agreement: Agreement
    queued: int = 0  # sentences copied to it and not yet answered


class Shadows:
    """The shadow of each model that has one; the copies of live requests; promote and discard."""

    def __init__(self, settings: Settings, metrics: Metrics, repository: Repository) -> None:
        self.settings, self.metrics, self.repository = settings, metrics, repository
        self.running: dict[str, Shadow] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._seen: dict[Path, tuple[tuple[str, int, int], ...]] = {}
        self._promoting: set[str] = set()

    @property
    def folder(self) -> Path:
        return self.settings.models / SHADOWS

    def agreements(self) -> list[Agreement]:
        return [shadow.agreement for shadow in list(self.running.values())]

    def processes(self) -> list[tuple[str, str, int]]:
        """(model, version, pid) of each shadow's inference process."""
        shadows = list(self.running.values())
        return [(s.served.name, s.served.version, pid) for s in shadows if (pid := s.served.batcher.pid) is not None]

    def get(self, name: str) -> Shadow:
        shadow = self.running.get(name)
        if shadow is None:
            raise ApiError(404, "no_shadow", f"model {name!r} has no shadow; load one from {self.folder}/")
        return shadow

    async def load(self, name: str) -> Shadow:
        """Load (or replace) the shadow of `name` from its candidate folder under `<models>/.shadows/`."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            serving = self.repository.models.get(name)
            if serving is None:
                raise ApiError(404, "unknown_model", f"model {name!r} is not served: a shadow needs a serving version")
            found = await self._candidate(name)
            served = await self._started(name, found)
            old = self.running.get(name)
            self.running[name] = Shadow(served, Agreement(name, serving.version, served.version))
            log.info(
                "model %s: shadow version %s from %s beside version %s",
                name,
                served.version,
                found.folder,
                serving.version,
            )
            if old is not None:
                await old.served.batcher.drain()
            return self.running[name]

    async def _started(self, name: str, found: Found) -> Served:
        """The candidate built, its inference process loaded and warmed up; any failure a failed load."""
        try:
            nice = self.settings.shadow_nice  # the shadow's process takes only CPU the serving versions leave
            settings = self.settings.model_copy(update={"drift": False})  # copies are not traffic: no drift counts
            served = await asyncio.to_thread(build_served, found.folder, settings, self.metrics, True, nice)
            if served.name != name:
                raise ValueError(f"{found.folder} names the model {served.name!r}, not {name!r}")
        except Exception as err:
            self._failed(name, found, err)
        try:
            served.batcher.start()
            await asyncio.wait_for(served.batcher.loaded(), LOAD_TIMEOUT_S)
        except BaseException as err:
            await asyncio.shield(served.batcher.drain())
            if not isinstance(err, Exception):
                raise
            self._failed(name, found, err)
        return served

    def _failed(self, name: str, found: Found, err: Exception) -> NoReturn:
        self.metrics.model_changes.labels(name, "failed").inc()
        why = str(err) or f"not ready in {LOAD_TIMEOUT_S:g} s"
        log.error("model %s: the shadow from %s failed to load: %s", name, found.folder, why)
        raise ApiError(400, "load_failed", f"model {name!r}: the shadow from {found.folder} failed to load: {why}")

    async def discard(self, name: str) -> None:
        async with self._locks.setdefault(name, asyncio.Lock()):
            shadow = self.running.pop(name, None)
            if shadow is None:
                raise ApiError(404, "no_shadow", f"model {name!r} has no shadow")
            await shadow.served.batcher.drain()
            log.info("model %s: shadow version %s discarded", name, shadow.served.version)

    async def promote(self, name: str) -> str:
        """Serve the shadow: its folder takes the serving one's place, loaded through the repository's swap."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            shadow = self.get(name)
            serving = self.repository.models.get(name)
            if serving is None:
                raise ApiError(404, "unknown_model", f"model {name!r} is not served")
            retired = self.settings.models / RETIRED / f"{serving.folder.name}-{serving.version}"
            await asyncio.to_thread(_exchange, serving.folder, shadow.served.folder, retired)
            try:
                await self.repository.load(name)
            except Exception:
                await asyncio.to_thread(_exchange_back, serving.folder, shadow.served.folder, retired)
                raise
            del self.running[name]
            await shadow.served.batcher.drain()  # its copies were never answers: nothing to keep
            log.info(
                "model %s: shadow version %s promoted; version %s kept in %s",
                name,
                shadow.served.version,
                serving.version,
                retired,
            )
            return shadow.served.version

    def offer(self, serving: Served, tokens: Sequence[Sequence[str]], tagged: Sequence[Tagged], seconds: float) -> None:
        """Copy an answered request to the model's shadow, if it has one (sampled; never awaited by the request)."""
        shadow = self.running.get(serving.name)
        if shadow is None or random.random() >= self.settings.shadow_share:
            return
        pairs = [(t, one) for t, one in zip(tokens, tagged, strict=True) if t]
        if not pairs:
            return
        if shadow.queued + len(pairs) > self.settings.shadow_queue:
            shadow.agreement.drop(len(pairs))
            return
        task = asyncio.get_running_loop().create_task(self._copy(shadow, pairs, seconds))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _copy(self, shadow: Shadow, pairs: list[tuple[Sequence[str], Tagged]], seconds: float) -> None:
        await asyncio.sleep(0)  # after the request's own task has gone on to write its answer
        started = time.perf_counter()
        try:
            encoded = [shadow.served.vocab.encode_sentence(list(t)) for t, _ in pairs]
            futures = shadow.served.batcher.submit(encoded, started + self.settings.request_timeout_s, details=False)
        except (QueueFull, Draining, ProcessLost, Overloaded, TooSlow):
            shadow.agreement.drop(len(pairs))
            return
        shadow.queued += len(pairs)
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), self.settings.request_timeout_s)
        except Exception:  # a shadow killed, restarting or too slow: its copies are lost, the serving one is not
            shadow.agreement.drop(len(pairs))
            for future in futures:
                future.cancel()
            return
        finally:
            shadow.queued -= len(pairs)
        took = time.perf_counter() - started
        shadow.agreement.add([t for t, _ in pairs], [one for _, one in pairs], results, (seconds, took))
        self._maybe_promote(shadow)

    def _maybe_promote(self, shadow: Shadow) -> None:
        """The optional rule (off by default): promote after N sentences when agreement and confidence pass."""
        after, agreement = self.settings.shadow_promote_after, shadow.agreement
        if not after or agreement.sentences < after or agreement.model in self._promoting:
            return
        tags, confidence = agreement.tag_agreement, agreement.confidence_ratio()
        if tags is None or tags < self.settings.shadow_min_agreement:
            return
        if confidence is None or confidence < self.settings.shadow_min_confidence:
            return
        log.info(
            "model %s: promoting shadow %s (tag agreement %.4f, confidence ratio %.4f over %d sentences)",
            agreement.model,
            agreement.shadow,
            tags,
            confidence,
            agreement.sentences,
        )
        self._promoting.add(agreement.model)
        task = asyncio.get_running_loop().create_task(self._promote_quietly(agreement.model))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _promote_quietly(self, name: str) -> None:
        try:
            with contextlib.suppress(ApiError):  # a failed load is logged and counted; the shadow goes on
                await self.promote(name)
        finally:
            self._promoting.discard(name)

    async def poll(self) -> None:
        """Candidate folders found (and unchanged since the last look) load as shadows; removed ones are discarded."""
        found = await asyncio.to_thread(scan, self.folder)
        now = {f.folder: await asyncio.to_thread(fingerprint, f.folder) for f in found}
        seen, self._seen = self._seen, now
        for one in found:
            name = one.name
            if name is None or seen.get(one.folder) != now[one.folder] or name not in self.repository.models:
                continue
            running = self.running.get(name)
            if (
                running is not None
                and running.served.folder == one.folder
                and running.served.metadata.files == one.files
            ):
                continue
            with contextlib.suppress(ApiError):
                await self.load(name)
        names = {f.name for f in found}
        for name in [n for n in self.running if n not in names]:
            with contextlib.suppress(ApiError):
                await self.discard(name)

    async def poll_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.poll()
            except Exception:
                log.exception("shadow poll failed; trying again in %g s", every)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*(s.served.batcher.drain() for s in self.running.values()), return_exceptions=True)
        self.running.clear()

    async def _candidate(self, name: str) -> Found:
        found = [f for f in await asyncio.to_thread(scan, self.folder) if f.name == name]
        if not found:
            raise ApiError(404, "no_candidate", f"no export folder under {self.folder} holds a model named {name!r}")
        if len(found) > 1:
            raise ApiError(409, "ambiguous_model", f"{len(found)} folders under {self.folder} hold {name!r}")
        return found[0]


def _exchange(serving: Path, candidate: Path, retired: Path) -> None:
    """serving -> retired, candidate -> serving (two renames on one file system)."""
    retired.parent.mkdir(parents=True, exist_ok=True)
    if retired.exists():
        shutil.rmtree(retired)
    serving.rename(retired)
    candidate.rename(serving)


def _exchange_back(serving: Path, candidate: Path, retired: Path) -> None:
    serving.rename(candidate)
    retired.rename(serving)
