"""Opt-in access control for the API routes: API keys, and a token-bucket rate limit per key or client.

Keys: `TAGGER_API_KEYS_FILE` names a file with one key per line, or its
SHA-256 as `sha256:<64 hex digits>` (so the file need not hold the secret
itself); blank lines and `#` comments are skipped. Then every `/v1` and `/v2`
route needs `Authorization: Bearer <key>`: a missing or unknown key is a 401 with
`WWW-Authenticate: Bearer`. Keys are kept and compared only as SHA-256
digests, in constant time against every known digest, and never logged; a
key is named in metrics by its id, the first 8 hex digits of its digest.
`/livez`, `/readyz`, `/v2/health/live`, `/v2/health/ready` and `/metrics` stay
open (probes and scrapers carry no keys; move /metrics off the public port
with TAGGER_METRICS_PORT), and `/v2/repository` has a token of its own.

Rate limit: `TAGGER_RATE_LIMIT` requests per second (0 = off), with bursts of
`TAGGER_RATE_BURST`, per key, or per client address when no keys are set; a
request over it is a 429 with the Retry-After that refills its bucket. Model
control (`/v2/repository`) is limited too, per address (its callers carry the
control token, not a key): each of its loads starts an inference process.
The address is the connecting one, or the one a trusted proxy names
(`TAGGER_FORWARDED_ALLOW_IPS`, applied by uvicorn before this middleware).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.schemas import ErrorDetail
from service.errors import error_response

_HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")
PROTECTED = ("/v1/", "/v2")  # path prefixes of the routes that need a key (/v2: the Open Inference Protocol)
PROBES = ("/v2/health/",)  # open: neither a key nor the rate limit
CONTROL = ("/v2/repository/",)  # model control: a token of its own instead of a key; rate-limited per address
MAX_BUCKETS = 10_000  # clients remembered by the rate limit; the least recently seen are forgotten first


class KeysFileError(ValueError):
    """The keys file cannot be used as it is; the message names file:line."""


def load_keys(path: Path) -> dict[bytes, str]:
    """SHA-256 digest -> key id for every key in the file (raw keys are hashed on reading)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise KeysFileError(f"{path}: cannot read the API keys file ({err.strerror})") from None
    keys: dict[bytes, str] = {}
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        hashed = _HASHED.fullmatch(entry)
        if hashed:
            digest = bytes.fromhex(hashed.group(1))
        elif entry.startswith("sha256:"):
            raise KeysFileError(f"{path}:{number}: a sha256: entry needs 64 hex digits")
        elif len(entry) < 16 or any(c.isspace() for c in entry):
            raise KeysFileError(f"{path}:{number}: a key needs 16 characters or more and no spaces")
        else:
            digest = hashlib.sha256(entry.encode()).digest()
        keys[digest] = digest.hex()[:8]
    if not keys:
        raise KeysFileError(
            f"{path}: no keys (one per line, or sha256:<hex>); without keys, unset TAGGER_API_KEYS_FILE"
        )
    return keys


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimit:
    """Token buckets, one per client, holding at most `burst` requests and refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def wait(self, client: str, now: float) -> float:
        """Take one request from the client's bucket: 0 if allowed, else the seconds until one is available."""
        bucket = self._buckets.pop(client, None) or Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket  # most recent last
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


class AccessControl:
    """ASGI middleware in front of the API routes: keys (if configured), then the rate limit (if configured)."""

    def __init__(self, app: ASGIApp, keys: dict[bytes, str] | None, limit: RateLimit | None, limited: Counter) -> None:
        self.app = app
        self.keys = keys
        self.limit = limit
        self.limited = limited  # tagger_rate_limited_total{client}: a key id, or "address"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith(PROTECTED) or path.startswith(PROBES):
            await self.app(scope, receive, send)
            return
        keyed = self.keys is not None and not path.startswith(CONTROL)
        client = "address"
        if keyed:
            key_id = self._key_id(scope)
            if key_id is None:
                refusal = ErrorDetail(
                    status=401,
                    reason="unauthorized",
                    message="this route needs an API key: send Authorization: Bearer <key>",
                )
                headers = {"WWW-Authenticate": 'Bearer realm="tagger"'}
                await error_response(refusal, headers)(scope, receive, send)
                return
            client = key_id
        if self.limit is not None:
            bucket = client if keyed else _address(scope)
            wait = self.limit.wait(bucket, time.monotonic())
            if wait > 0:
                self.limited.labels(client).inc()
                refusal = ErrorDetail(
                    status=429,
                    reason="rate_limited",
                    message=f"more than {self.limit.rate:g} requests/s (bursts of {self.limit.burst}) from this "
                    f"{'key' if keyed else 'address'} (TAGGER_RATE_LIMIT); retry in {wait:.2f} s",
                )
                await error_response(refusal, {"Retry-After": str(max(1, math.ceil(wait)))})(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _key_id(self, scope: Scope) -> str | None:
        assert self.keys is not None
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip()).digest()
        found = None
        for known, key_id in self.keys.items():  # every digest compared, in constant time each
            if hmac.compare_digest(digest, known):
                found = key_id
        return found


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
