"""`tagger serve`: uvicorn around the app, with a drain on SIGTERM.

On SIGTERM (or Ctrl-C) /readyz turns 503 at once so load balancers stop
sending; uvicorn stops accepting connections and waits for the requests in
flight; the lifespan then drains every batcher, so no accepted request goes
unanswered; then the process exits.
"""

from __future__ import annotations

import gc
import logging
import resource
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI
from prometheus_client import start_http_server

from service.app import create_app
from service.edge.connection import ConnectionLimits, guarded_protocol
from service.observability.logs import setup_logging
from service.settings import Settings
from service.state import AppState

log = logging.getLogger("tagger")
# descriptors kept for the server's own work beyond its connections: inference processes and their sockets,
# model files, the event loop, logs
FD_RESERVE = 64


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: AppState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.state.draining, self.state.ready = True, False
        super().handle_exit(sig, frame)


def tune_garbage_collector() -> None:
    """Leave the models out of garbage collection, and collect the young generation less often.

    Under load, 64 requests in flight keep thousands of young objects alive
    across awaits, so the default thresholds run collections every few
    requests, and the older generations reach the models' vocabularies and the
    libraries' objects. Measured on 2 cores at concurrency 64, with the loaded
    objects frozen and a young generation of 10,000 allocations: 1,140 ->
    1,420 requests/s on the shipped (1-layer) en-upos, medians of 4 runs; the
    2-layer one gained less (single runs: about 960 -> 1,070), its model
    leaving less to gain. Cycles are still collected.
    """
    gc.collect()
    gc.freeze()  # everything loaded so far: models, vocabularies, modules
    gc.set_threshold(10_000, 10, 10)


def open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one (a busy server needs descriptors); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_limits(settings: Settings, open_files: int) -> ConnectionLimits:
    """The connection limits asked for, with the connection cap lowered to leave FD_RESERVE descriptors free."""
    fitting = max(1, open_files - FD_RESERVE)
    if settings.max_connections > fitting:
        log.warning(
            "TAGGER_MAX_CONNECTIONS=%d does not fit the open-files limit of %d (%d kept in reserve); using %d",
            settings.max_connections,
            open_files,
            FD_RESERVE,
            fitting,
        )
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=min(settings.max_connections, fitting),
    )


def uvicorn_config(app: FastAPI, settings: Settings, **overrides: object) -> uvicorn.Config:
    """uvicorn as the service runs it: the guarded HTTP protocol, no access log, a drain as long as a request,
    and `X-Forwarded-For` read only from the proxies the settings name (`trusted_proxies`)."""
    state: AppState = app.state.tagger
    limits = connection_limits(settings, open_files_limit())
    protocol = guarded_protocol(limits, on_refusal=lambda reason: state.metrics.rejections.labels(reason).inc())
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol,
        "log_level": "info",
        "log_config": None,  # uvicorn's lines go through the service's handler and format (service.observability.logs)
        "access_log": False,  # the service writes its own access line, with the model, sizes and request id
        "timeout_graceful_shutdown": int(settings.request_timeout_s) + 5,
        **trusted_proxies(settings),
        **overrides,
    }
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


def trusted_proxies(settings: Settings) -> dict[str, object]:
    """uvicorn's proxy options: off unless TAGGER_FORWARDED_ALLOW_IPS names proxies.

    uvicorn's own default trusts 127.0.0.1 (or $FORWARDED_ALLOW_IPS) to set
    `X-Forwarded-For`, so any local client, or anything relayed through a
    local process, could give itself a new address a request and so a new
    rate-limit bucket. With proxies named, a request from one of them is
    taken to come from the last address in `X-Forwarded-For` that is not a
    trusted proxy; from anyone else the header is ignored.
    """
    proxies = [part.strip() for part in settings.forwarded_allow_ips.split(",") if part.strip()]
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies}


def serve(settings: Settings) -> None:
    """Load and verify the models, then serve until SIGTERM."""
    setup_logging(json_lines=settings.log_format == "json")
    app = create_app(settings)
    if settings.metrics_port is not None:  # Prometheus's own HTTP server, on a port of its own
        start_http_server(settings.metrics_port, addr=settings.host, registry=app.state.tagger.metrics.prometheus)
    tune_garbage_collector()
    config = uvicorn_config(app, settings)
    # uvicorn re-raises the captured signal once it has shut down; with these
    # handlers in place that ends here, so a completed drain exits with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    DrainingServer(config, app.state.tagger).run()
