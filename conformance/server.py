"""A real `seedcore serve` for the suite: a fresh PostgreSQL database of its own, a free port,
short leases, no built-in workers, and a bootstrap token that every call must carry.

Invariants: the database is created before the server starts and dropped after it stopped,
even when a scenario failed; the server's log goes to a file the report can show.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# Three seconds: a lost lease is noticed quickly, and the heartbeat interval is one second.
LEASE_SECONDS = 3


class SetupError(Exception):
    """The server or its database could not be set up."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database swapped for `name` (user, host and options kept)."""
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def psql(admin_url: str, sql: str) -> None:
    done = subprocess.run(
        ["psql", "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise SetupError(f"psql {sql!r} failed: {done.stderr.strip()}")


class Server:
    """One seedcore process on its own database; use as a context manager."""

    def __init__(self, binary: str, admin_url: str, workdir: Path) -> None:
        self.binary = binary
        self.admin_url = admin_url
        self.log_path = workdir / "server.log"
        self.database = f"seedcore_conformance_{os.getpid()}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = self._generate_token()
        self.process: subprocess.Popen[bytes] | None = None

    def _generate_token(self) -> str:
        done = subprocess.run(
            [self.binary, "token", "generate"], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0 or not done.stdout.strip().startswith("sc_"):
            raise SetupError(f"`seedcore token generate` failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def __enter__(self) -> Server:
        psql(self.admin_url, f"drop database if exists {self.database}")
        psql(self.admin_url, f"create database {self.database}")
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        env = dict(
            os.environ,
            DATABASE_URL=database_url(self.admin_url, self.database),
            HOST="127.0.0.1",
            PORT=str(self.port),
            SEEDCORE_LEASE_SECONDS=str(LEASE_SECONDS),
            # Built-in workers would claim every type, conformance.work included.
            SEEDCORE_WORKER_CONCURRENCY="0",
            SEEDCORE_AUTH="auto",
            SEEDCORE_BOOTSTRAP_TOKEN=self.token,
            # A thousand tasks are claimed and completed in seconds under one token.
            SEEDCORE_RATE_LIMIT_PER_SECOND="0",
            SEEDCORE_SHUTDOWN_GRACE_SECONDS="2",
            LOG_LEVEL="info",
        )
        for inherited in ("PG_DSN", "RUST_LOG", "SEEDCORE_QUEUES"):
            env.pop(inherited, None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy(timeout=60.0)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SetupError(f"seedcore serve exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise SetupError(f"seedcore serve did not answer /health within {timeout:.0f} s")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            psql(self.admin_url, f"drop database if exists {self.database} with (force)")
        except (SetupError, subprocess.TimeoutExpired) as err:
            print(f"conformance: warning: could not drop {self.database}: {err}")
