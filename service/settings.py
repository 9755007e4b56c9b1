"""Service settings: one typed object, built once at start-up from flags, then environment.

Every field can be set as `TAGGER_<FIELD>` (e.g. `TAGGER_MAX_BATCH_TOKENS=4096`);
`tagger serve` flags win over the environment. Validators refuse values that
would make the service unsafe or useless, at start-up rather than under load.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODELS = Path(__file__).resolve().parents[1] / "exports"
_DATABASES = ("sqlite://", "postgresql://", "postgres://", "postgresql+psycopg://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAGGER_", frozen=True, extra="forbid")

    # where and what to serve
    models: Path = Field(DEFAULT_MODELS, description="folder of export folders; each subfolder is one model")
    default_model: str = Field("en-upos", description="model behind POST /v1/tag")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # request limits (each refusal names the limit and its setting)
    max_sentences: int = Field(256, ge=1, description="sentences (or texts) per request")
    max_tokens: int = Field(512, ge=1, description="tokens per sentence")
    max_request_tokens: int = Field(
        16384, ge=1, description="tokens per request, all sentences together (what the shipped models tag in time)"
    )
    max_token_chars: int = Field(1000, ge=1, description="characters per token of `sentences` (texts: max_text_chars)")
    max_text_chars: int = Field(20_000, ge=1, description="characters per text")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="request body size (413 above)")
    max_top_k: int = Field(10, ge=1, description="largest top_k a request may ask for")
    max_response_values: int = Field(
        65536,
        ge=1,
        description="tokens x (1 + top_k) per request: bounds the answer (about 40 bytes a value) and the time "
        "spent serialising it on the event loop",
    )

    # connections (service.edge.connection: refused below the app, before anything is buffered past the limit)
    max_header_bytes: int = Field(16384, ge=1024, description="request line, and all headers together (414/431)")
    max_headers: int = Field(100, ge=8, description="headers per request (431 above)")
    header_timeout_s: float = Field(10.0, gt=0.0, description="for a request's headers to arrive (408 after)")
    body_timeout_s: float = Field(30.0, gt=0.0, description="for a request's body to arrive after its headers")
    max_connections: int = Field(
        1000, ge=1, description="open connections; more are answered 503 and closed (lowered to fit the fd limit)"
    )

    # dynamic batching
    batching: bool = Field(True, description="false: every sentence runs alone (batch size 1)")
    max_batch_sentences: int = Field(64, ge=1, description="sentences per batch")
    max_batch_tokens: int = Field(4096, ge=1, description="padded tokens (sentences x longest) per batch")
    max_batch_padding: float = Field(
        0.1, ge=0.0, le=1.0, description="largest share of padded positions in a batch (sentences of similar length)"
    )
    max_wait_ms: float = Field(0.0, ge=0.0, le=1000.0, description="extra wait to fill a batch; 0 = none")
    max_batch_ms: float = Field(
        40.0,
        ge=0.0,
        description="cap a batch at this much work at the model's measured speed, so a request waits for at most "
        "one short batch in flight; 0 = no cap",
    )
    queue_size: int = Field(4096, ge=1, description="sentences waiting per model before 503")
    request_timeout_s: float = Field(10.0, gt=0.0, description="deadline per request before 504")

    # ONNX Runtime
    # One thread: on a small machine the event loop (HTTP, JSON, encoding) needs
    # the other core; measured on 2 cores it beats one thread per core under load.
    intra_threads: int = Field(1, ge=0, description="ONNX Runtime threads per inference; 0 = one per core")
    inference_threads: int = Field(
        1, ge=1, description="with TAGGER_INFERENCE_PROCESS=false: inference threads per model (batches at once)"
    )
    inference_process: bool = Field(
        True,
        description="run each model's queue and inference in a process of its own (false: a thread of the server "
        "process, sharing its GIL with the event loop)",
    )
    inference_stall_timeout_s: float = Field(
        30.0, gt=0.0, description="kill and replace an inference process silent this long (heartbeats every 0.5 s)"
    )
    spinning: bool = Field(
        False, description="ONNX Runtime threads busy-wait between ops (steals the CPU the event loop needs)"
    )
    warmup: bool = Field(True, description="run a grid of batch shapes before /readyz turns ready")
    shadow_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="scheduling niceness of a shadow's inference process: it takes only CPU the serving ones leave",
    )
    shadow_share: float = Field(
        1.0, ge=0.0, le=1.0, description="share of a model's requests copied to its shadow version, if it has one"
    )
    shadow_queue: int = Field(
        512, ge=1, description="sentences a shadow may have in flight; copies past it are dropped"
    )
    shadow_promote_after: int = Field(
        0, ge=0, description="promote a shadow after this many sentences if it passes the two thresholds; 0 = never"
    )
    shadow_min_agreement: float = Field(0.99, ge=0.0, le=1.0, description="token tag agreement to promote a shadow")
    shadow_min_confidence: float = Field(
        1.0, ge=0.0, description="the shadow's mean sentence confidence over the serving version's, to promote it"
    )
    drift: bool = Field(
        True,
        description="count drift statistics (unknown words, case, script, tags, confidence) per model and version "
        "against the export's reference profile: tagger_drift_* metrics and GET /v1/models/{model}/drift",
    )

    # access (service.edge.access): off unless set
    api_keys_file: Path | None = Field(
        None, description="file of API keys (one a line, or sha256:<hex>): /v1 routes then need Bearer <key>"
    )
    rate_limit: float = Field(0.0, ge=0.0, description="requests per second per key (or client address); 0 = off")
    rate_burst: int = Field(0, ge=0, description="requests a client may send at once; 0 = twice the rate")
    forwarded_allow_ips: str = Field(
        "",
        description="proxies trusted to name the client in X-Forwarded-For (comma-separated addresses or networks, "
        "e.g. nginx's); empty = none: the rate limit and logs see the connecting address, whatever a header says",
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="serve /metrics on this port instead of the API's (keep it private)"
    )
    docs: bool = Field(True, description="serve /docs (its assets from this host) and /openapi.json")
    ui: bool = Field(True, description="serve the web page at / (tag in a browser; its files from this host)")

    # the live model repository (service.models.repository)
    control_token: SecretStr | None = Field(
        None,
        description="turns on /v2/repository (index, load, unload) for requests with Authorization: Bearer <token>",
    )
    model_poll_s: float = Field(
        0.0,
        ge=0.0,
        description="look at the models folder this often: load new export folders, swap in changed ones, "
        "unload removed ones; 0 = only at start-up and on /v2/repository requests",
    )

    # corrections (service.corrections): off unless a database is named
    corrections_db: SecretStr | None = Field(
        None,
        description="the corrections database: a file path (SQLite) or a postgresql:// URL (several replicas); "
        "turns on the review queue and correction routes; unset = off",
    )
    review_sample: float = Field(
        0.0, ge=0.0, le=1.0, description="share of served sentences kept in the review queue; 0 = none kept"
    )
    review_retention_h: float = Field(168.0, gt=0.0, description="hours a sentence stays in the review queue")
    review_backlog: int = Field(
        1000, ge=1, description="sampled sentences waiting for the database; more are dropped (and counted)"
    )

    # logs (service.observability.logs)
    access_log: bool = Field(True, description="a line per request: method, route, model, status, sizes, ms, id")
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per line")

    # benchmarking
    echo_endpoint: bool = Field(False, description="mount POST /v1/echo (parses and returns a request; no model)")

    @field_validator("corrections_db", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """TAGGER_CORRECTIONS_DB= (empty, as compose passes an unset variable) means off."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.max_batch_tokens < self.max_tokens:
            raise ValueError(
                f"max_batch_tokens ({self.max_batch_tokens}) must be >= max_tokens ({self.max_tokens}): "
                "a sentence at the token limit must fit in a batch"
            )
        token = self.control_token.get_secret_value() if self.control_token is not None else None
        if token is not None and (len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token):
            raise ValueError(
                "control_token needs 16 characters or more, printable ASCII without spaces (an HTTP header carries "
                "it; it loads and unloads models)"
            )
        for proxy in filter(None, (part.strip() for part in self.forwarded_allow_ips.split(","))):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips: {proxy!r} is not an IP address or network (name each trusted proxy; "
                    "0.0.0.0/0 would let any client choose its own address)"
                ) from None
        database = self.corrections_db.get_secret_value() if self.corrections_db is not None else None
        if database is not None and "://" in database and not database.startswith(_DATABASES):
            scheme = database.split("://")[0]
            raise ValueError(
                f"corrections_db: {scheme}:// is not a database tagger uses (a file path, or postgresql://)"
            )
        if self.review_sample > 0 and database is None:
            raise ValueError("review_sample needs corrections_db: the review queue is kept in the corrections database")
        if 0 < self.model_poll_s < 0.1:
            raise ValueError(f"model_poll_s is {self.model_poll_s}: 0 (off) or 0.1 s or more")
        return self
