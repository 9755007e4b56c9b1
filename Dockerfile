# syntax=docker/dockerfile:1
# Two stages: the builder installs the serving side (no torch: the core install
# never pulls it) into a virtual environment; the runtime stage copies only that
# environment and the shipped models onto a slim base, with no compilers and
# no pip caches, and runs as a non-root user on a read-only root filesystem.

FROM python:3.11-slim AS builder
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tagger
COPY pyproject.toml README.md ./
COPY requirements/serve.lock requirements/
COPY tagger/ tagger/
COPY model/ model/
COPY service/ service/
COPY cli/ cli/
# The serving dependencies exactly as locked, each file checked against its sha256
# (requirements/serve.lock, made by pip-compile --generate-hashes from pyproject.toml),
# then a regular (not editable) install of the project itself on top: what serving needs.
RUN /opt/tagger/bin/pip install --no-compile --require-hashes -r requirements/serve.lock \
    && /opt/tagger/bin/pip install --no-compile --no-deps . \
    && /opt/tagger/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None"
# COPY keeps the build context's modes, and `tagger export` leaves a model folder
# 0700 (a temporary folder moved into place): the runtime user could not read it.
# Readable by all, writable by none, whatever the checkout's modes.
COPY exports/ /srv/tagger/exports/
RUN chmod -R a+rX,go-w /srv/tagger/exports

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="tagger" \
      org.opencontainers.image.description="BiLSTM sequence tagger served from ONNX Runtime"
RUN groupadd --system --gid 10001 tagger \
    && useradd --system --uid 10001 --gid tagger --no-create-home --home-dir /nonexistent tagger
COPY --from=builder /opt/tagger /opt/tagger
COPY --from=builder /srv/tagger/exports/ /srv/tagger/exports/
# Everything the process writes goes to /tmp, which compose and Kubernetes
# mount as tmpfs, so the root filesystem can be read-only. (ONNX Runtime writes
# its telemetry state under $HOME/.cache, hence HOME=/tmp.)
ENV PATH=/opt/tagger/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    TAGGER_MODELS=/srv/tagger/exports \
    TAGGER_HOST=0.0.0.0 \
    TAGGER_PORT=8000 \
    TAGGER_INTRA_THREADS=1
# TAGGER_INTRA_THREADS: ONNX Runtime sizes its pool from the host's cores, not
# the container's CPU limit (it ignores cgroup quotas), so 0 would oversubscribe
# a limited container; one thread per inference leaves the event loop a core
# (measured faster than two on 2 cores). With a limit of N > 2 CPUs try N - 1.
USER 10001:10001
WORKDIR /srv/tagger
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen(f\"http://127.0.0.1:{os.environ['TAGGER_PORT']}/readyz\", timeout=2)"]
# SIGTERM drains: /readyz turns 503, accepted requests finish, exit 0.
STOPSIGNAL SIGTERM
CMD ["tagger", "serve"]
