"""The live model repository: load, unload and swap models while the service runs.

A new version is loaded beside the one serving (its inference process
started and warmed up) and only then put in its place, in one step of the
event loop: a request looks its model up and queues its sentences without
yielding in between, so every request runs wholly on the old version or
wholly on the new. The old version is then drained (it finishes what it
was given) and stopped. A version that fails to load is stopped and the
old one keeps serving; the index, a log line and `tagger_model_changes`
say why. Any failure of one folder (an unreadable vocabulary, an exception
nobody foresaw) is that folder's failure: it never stops a poll nor leaves
a model LOADING. The models folder is read in threads, never on the loop.

A model's name is the `name` in its export's metadata (normally its folder's
name); its version is its graph's sha256 (the first 12 hex digits), so a
folder whose files changed is a new version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

from service.errors import ApiError
from service.inference.admission import LoadFailed
from service.models.folders import Files, Found, fingerprint, look, scan, still_there
from service.models.served import Served, build_served, describe_loaded
from service.observability.metrics import Metrics
from service.settings import Settings
from tagger.artifact import MODEL_FILE, ArtifactError

log = logging.getLogger("tagger")
LOAD_TIMEOUT_S = 300.0  # for a new version's inference process to load and warm up
State = Literal["READY", "LOADING", "UNAVAILABLE"]


@dataclass
class Entry:
    """What the index says of one model."""

    name: str
    folder: Path | None
    state: State
    version: str | None = None  # the version serving (or, unavailable, the one last tried)
    reason: str = ""
    unloaded: bool = False  # by request: polling leaves it unloaded until a load request
    failed: Files | None = None  # the files of the last failed attempt: not retried


@dataclass
class Repository:
    """The served models (`models`, shared with the routes) and the loads and unloads that change them.

    Every change to a model happens under that model's lock, and a change the
    poll wants is decided again under it: an unload or a failed load that
    happened while the poll waited is not undone.
    """

    settings: Settings
    metrics: Metrics
    models: dict[str, Served]
    entries: dict[str, Entry] = field(default_factory=dict)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    closed: bool = False  # shutting down: no more loads
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _seen: dict[Path, Files] = field(default_factory=dict)  # each folder's files at the last poll
    _retiring: list[Served] = field(default_factory=list)  # versions unloaded or replaced, still draining

    def __post_init__(self) -> None:
        for name, served in self.models.items():
            self.entries[name] = Entry(name, served.folder, "READY", served.version)

    async def index(self) -> list[Entry]:
        """Every model served or found on disk, by name."""
        for found in await asyncio.to_thread(scan, self.settings.models):
            name = found.name or found.folder.name
            if name not in self.entries:
                self.entries[name] = Entry(name, found.folder, "UNAVAILABLE", None, found.problem or "not loaded")
        return [self.entries[name] for name in sorted(self.entries)]

    async def load(self, name: str, polled: bool = False) -> Entry:
        """Serve the export folder named `name` on disk: a first load, or a new version swapped in.

        `polled`: only if the poll still wants it once the lock is held (not unloaded by request meanwhile,
        not the files that failed last time).
        """
        async with self._lock(name):
            if self.closed:
                raise ApiError(503, "draining", "the server is shutting down", headers={"Retry-After": "5"})
            found = await self._folder_of(name)
            entry = self.entries.setdefault(name, Entry(name, found.folder, "UNAVAILABLE"))
            current = self.models.get(name)
            if found.serves(current):
                if entry.state == "READY":
                    entry.reason = ""  # a failure of other files, or a folder gone, is over
                entry.unloaded = False
                return entry  # already serving these files
            if polled and (entry.unloaded or entry.failed == await asyncio.to_thread(fingerprint, found.folder)):
                return entry
            entry.unloaded = False
            await self._swap_in(entry, found, current)
            return entry

    async def unload(self, name: str, gone: bool = False) -> Entry:
        """Stop serving `name`: refuse new requests for it, finish those admitted, stop its inference process.

        Unloaded by request, polling leaves it unloaded. `gone` (the poll found no folder for it): only if,
        with the lock held, its folder is still missing and no other folder names it; a new folder loads.
        """
        async with self._lock(name):
            entry = self.entries.get(name)
            if entry is None:
                raise ApiError(404, "unknown_model", f"no model {name!r} in the repository {self.settings.models}")
            if name == self.settings.default_model:
                raise ApiError(
                    409,
                    "default_model",
                    f"{name!r} is the default model (TAGGER_DEFAULT_MODEL) behind /v1/tag and cannot be unloaded; "
                    "load a new version of it instead",
                )
            served = self.models.get(name)
            if gone and (
                served is None or await asyncio.to_thread(still_there, self.settings.models, served.folder, name)
            ):
                return entry
            self.models.pop(name, None)
            entry.state, entry.unloaded = "UNAVAILABLE", not gone
            entry.reason = "its folder is gone" if gone else "unloaded"
            if served is not None:
                self.metrics.model_info.remove(name)
                self.metrics.model_changes.labels(name, "unloaded").inc()
                log.info("unloaded model %s version %s", name, served.version)
                await self._stopped(served)
            return entry

    async def poll(self) -> None:
        """Bring what is served in line with the folder: new and changed folders loaded, removed ones unloaded.

        A folder is loaded once its files are as they were at the last poll (a copy in progress is left
        until it is done); an unreadable one is left alone, whatever it served.
        """
        found, now = await asyncio.to_thread(look, self.settings.models)  # disk reads, off the event loop
        seen, self._seen = self._seen, now
        names: dict[str, list[Found]] = {}
        for one in found:
            names.setdefault(one.name or "", []).append(one)
        for name, folders in sorted(names.items()):
            if not name or len(folders) > 1:
                continue  # unreadable (a copy in progress?), or ambiguous (a load request says which)
            (one,) = folders
            current = self.models.get(name)
            if one.serves(current):
                entry = self.entries[name]
                if entry.state == "READY" and entry.reason.startswith("its folder is gone"):
                    entry.reason = ""
                continue
            if seen.get(one.folder) != self._seen[one.folder]:
                continue  # new or still changing: look again next time
            try:
                with contextlib.suppress(ApiError):  # a failure is in the index, the log and the metrics
                    await self.load(name, polled=True)
            except Exception:  # a bug of ours: this folder's business, never the poll's (later folders still load)
                log.exception("model %s: loading from %s failed", name, one.folder)
        served_from = {f.folder for f in found}
        for name in sorted(set(self.models) - set(names)):
            if self.models[name].folder in served_from:
                continue  # its folder is there, unreadable for now: not gone
            if name == self.settings.default_model:
                self.entries[name].reason = "its folder is gone; kept serving as the default model"
                continue
            with contextlib.suppress(ApiError):
                await self.unload(name, gone=True)

    async def poll_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.poll()
            except Exception:  # a poll must never stop polling (a folder vanishing mid-scan, a full disk)
                log.exception("model repository poll failed; trying again in %g s", every)

    async def drain(self) -> None:
        """At shutdown: no more loads; wait for old versions still finishing their work."""
        self.closed = True
        await asyncio.gather(*self.background, return_exceptions=True)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def processes(self) -> list[tuple[str, str, int]]:
        """(model, version, pid) of each inference process, serving or draining (copies: read from any thread)."""
        models = [*list(self.models.values()), *list(self._retiring)]
        return [(m.name, m.version, pid) for m in models if (pid := m.batcher.pid) is not None]

    async def _folder_of(self, name: str) -> Found:
        found = [f for f in await asyncio.to_thread(scan, self.settings.models) if (f.name or f.folder.name) == name]
        if not found:
            raise ApiError(
                404, "unknown_model", f"no export folder in {self.settings.models} holds a model named {name!r}"
            )
        if len(found) > 1:
            folders = ", ".join(str(f.folder) for f in found)
            raise ApiError(409, "ambiguous_model", f"{len(found)} folders hold a model named {name!r}: {folders}")
        if found[0].name is None:
            raise ApiError(400, "unreadable_model", f"{found[0].folder}: {found[0].problem}")
        return found[0]

    async def _swap_in(self, entry: Entry, found: Found, current: Served | None) -> None:
        name = entry.name
        tried = (found.files or {}).get(MODEL_FILE, "?")[:12]
        if current is None:
            entry.state, entry.folder, entry.version = "LOADING", found.folder, tried
        entry.reason = f"loading version {tried} from {found.folder}"
        files = await asyncio.to_thread(fingerprint, found.folder)
        served, labels = await self._trial(entry, found, current, files)
        self.models[name] = served  # from here on, requests for `name` run on the new version
        try:
            entry.folder, entry.state, entry.version = served.folder, "READY", served.version
            entry.reason, entry.failed = "", None
            self.metrics.model_info.labels(name).info(labels)
            self.metrics.model_changes.labels(name, "loaded").inc()
            self.metrics.model_changes.labels(name, "failed")  # at 0, so increase() sees the first failure
            log.info(
                "loaded model %s version %s from %s%s",
                name,
                served.version,
                served.folder,
                f" (replacing version {current.version})" if current is not None else "",
            )
        finally:
            if current is not None:
                self._retire(current)

    async def _trial(
        self, entry: Entry, found: Found, current: Served | None, files: Files
    ) -> tuple[Served, dict[str, str]]:
        """The new version built, its inference process started and warmed up; or `_failed`, whatever went wrong."""
        try:
            served = await asyncio.to_thread(build_served, found.folder, self.settings, self.metrics, trial=True)
            if served.name != entry.name:
                raise ArtifactError(
                    f"{found.folder}: its metadata now names the model {served.name!r}, not {entry.name!r}"
                )
            labels = describe_loaded(served)  # before the swap: a label prometheus refuses must not stop it midway
        except Exception as err:  # any failure of this folder is this folder's failure (a RecursionError too)
            self._failed(entry, current, files, _why(err))
        try:
            served.batcher.start()
            await asyncio.wait_for(served.batcher.loaded(), LOAD_TIMEOUT_S)
        except (LoadFailed, TimeoutError) as err:
            await served.batcher.drain()
            self._failed(entry, current, files, str(err) or f"not ready in {LOAD_TIMEOUT_S:g} s")
        except Exception as err:
            await served.batcher.drain()
            self._failed(entry, current, files, _why(err))
        except BaseException:  # cancelled (the server is going down): leave no inference process behind
            await asyncio.shield(served.batcher.drain())
            raise
        return served, labels

    def _failed(self, entry: Entry, current: Served | None, files: Files, why: str) -> NoReturn:
        entry.failed = files
        entry.reason = f"the new version failed to load: {why}"
        if current is None:
            entry.state = "UNAVAILABLE"
        self.metrics.model_changes.labels(entry.name, "failed").inc()
        log.error(
            "model %s: %s from %s; %s",
            entry.name,
            entry.reason,
            entry.folder,
            "still serving" if current else "not served",
        )
        raise ApiError(400, "load_failed", f"model {entry.name!r}: {entry.reason}")

    def _retire(self, old: Served) -> None:
        """Drain the replaced version in the background: its admitted requests finish on it."""
        task = asyncio.get_running_loop().create_task(self._stopped(old))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _stopped(self, old: Served) -> None:
        """Drain a version no longer serving; its inference process is listed (`processes`) until it exits."""
        self._retiring.append(old)
        try:
            await old.batcher.drain()
        finally:
            self._retiring.remove(old)
        log.info("model %s version %s drained and stopped", old.name, old.version)


def _why(err: Exception) -> str:
    """A load failure as the index and the log say it: an export's own refusals as they are, others by type."""
    return str(err) if isinstance(err, ArtifactError | OSError | ValueError) else f"{type(err).__name__}: {err}"
