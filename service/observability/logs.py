"""The service's log: plain lines for a terminal, or one JSON object per line for a log pipeline.

What it says: one line per model loaded (name, version, task, load time),
one when every model is warmed up, an access line per request (method,
route, model, status, sentences, tokens, milliseconds, request id; off with
TAGGER_ACCESS_LOG=false), and uvicorn's own lines, all through one handler.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

ACCESS = logging.getLogger("tagger.access")
FIELDS = ("method", "route", "model", "status", "sentences", "tokens", "ms", "request_id")  # of an access line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(json_lines: bool) -> None:
    """Send every log record (ours and uvicorn's) to stderr, in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)


def access(method: str, route: str, model: str, status: int, sentences: int, tokens: int, ms: float, rid: str) -> None:
    """One request's access line."""
    fields = {
        "method": method,
        "route": route,
        "model": model,
        "status": status,
        "sentences": sentences,
        "tokens": tokens,
        "ms": round(ms, 2),
        "request_id": rid,
    }
    ACCESS.info(
        "%s %s %s %d %d sentences %d tokens %.1f ms id=%s",
        method,
        route,
        model or "-",
        status,
        sentences,
        tokens,
        ms,
        rid,
        extra=fields,
    )
