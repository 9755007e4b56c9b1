"""Real databases for the store's tests: SQLite files, and a PostgreSQL server started in a temporary folder.

The server is Debian's `postgresql` (.ci/run installs it): initdb into a fresh folder, `postgres` on
127.0.0.1 at a free port, every wait bounded, stopped at the end. PostgreSQL refuses to run as root, so
under root (as CI runs) it runs as the `postgres` user Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_S = 30.0


def _initdb() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]) if found else (Path(shutil.which("initdb")) if shutil.which("initdb") else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner() -> dict[str, Any]:
    """subprocess arguments that run a command as `postgres` when we are root (the server refuses root).

    Set on the process itself (no runuser in between), so a signal to it reaches the server.
    """
    return {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}


@dataclass
class PostgresServer:
    """One PostgreSQL server in its own folder; `url(db)` names a database on it."""

    folder: Path
    port: int
    bin: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> PostgresServer:
        initdb = _initdb()
        if initdb is None:
            pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does)")
        folder = Path(tempfile.mkdtemp(prefix="tagger-pg-"))
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            folder.chmod(0o700)
        data = folder / "data"
        command = [str(initdb), "-D", str(data), "-U", "tagger", "-A", "trust", "--no-sync", "-E", "UTF8"]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=folder, **_as_owner())
        return cls(folder, _free_port(), initdb.parent)

    def start(self) -> None:
        command = [str(self.bin / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}"]
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 (the server writes it until stopped)
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, **_as_owner())
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._accepts():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not start in {START_TIMEOUT_S} s: {self.log()[-2000:]}")
            time.sleep(0.1)

    def _accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Fast shutdown (SIGINT: abort sessions, checkpoint, exit), bounded; then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def dsn(self, database: str) -> str:
        return f"postgresql://tagger@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        import psycopg

        name = f"t{time.monotonic_ns()}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session."""
    server = PostgresServer.create()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a SQLite file, or a fresh database on the session's server."""
    if request.param == "sqlite":
        return str(tmp_path / "corrections.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def store(database_url: str) -> Iterator[Any]:
    from service.corrections.store import CorrectionStore

    opened = CorrectionStore(database_url)
    opened.start()
    yield opened
    opened.close()
