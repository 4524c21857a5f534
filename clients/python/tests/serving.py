"""A real `seedcore serve` for the tests: embedded SQLite in a temporary folder, a free port,
authentication off, 3-second leases and no built-in workers (so only pull workers take tasks).

The binary is `SEEDCORE_BIN`, by default `target/debug/seedcore` of the repository.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, Optional

REPO = Path(__file__).resolve().parents[3]
LEASE_SECONDS = 3


def binary() -> str:
    return os.environ.get("SEEDCORE_BIN") or str(REPO / "target" / "debug" / "seedcore")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One server process; `stop` and `start` again keep its data and port."""

    def __init__(self, env: Optional[Dict[str, str]] = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="seedcore-py-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "SEEDCORE_DATA_DIR": self._dir.name,
            "SEEDCORE_AUTH": "off",
            "SEEDCORE_LEASE_SECONDS": str(LEASE_SECONDS),
            "SEEDCORE_WORKER_CONCURRENCY": "0",
            "SEEDCORE_ESCALATED_CONCURRENCY": "0",
            "SEEDCORE_RETRY_BASE_SECONDS": "0.2",
            "SEEDCORE_RETRY_MAX_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        for key in ("DATABASE_URL", "PG_DSN", "POSTGRES_HOST"):
            self._env.pop(key, None)
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._log = open(Path(self._dir.name) / "server.log", "ab")

    def start(self, timeout: float = 30.0) -> None:
        self._process = subprocess.Popen(
            [binary(), "serve"], env=self._env, stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"seedcore serve exited: {self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"seedcore serve did not answer within {timeout} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        self.stop()
        self._log.close()
        self._dir.cleanup()

    def log_text(self) -> str:
        return (Path(self._dir.name) / "server.log").read_text(errors="replace")[-4000:]
