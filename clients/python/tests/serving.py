"""A real `seedcore serve` for the tests: embedded SQLite in a temporary folder, a free port,
authentication off, 3-second leases and no built-in workers (so only pull workers take tasks).

The binary is `SEEDCORE_BIN`, by default `target/debug/seedcore` of the repository. The tests
import the package from `src/`, so they run without installing it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[3]
SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
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
        inherited = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "PG_DSN", "POSTGRES_HOST")
        }
        self._env = {
            **inherited,
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

    def stop(self, kill: bool = False) -> None:
        """Stops the server: SIGTERM (it finishes what it answers, long polls included), or
        with `kill` SIGKILL, as a crash or a cut network would leave it."""
        process, self._process = self._process, None
        if process is not None and kill:
            process.kill()
            process.wait()
        elif process is not None and process.poll() is None:
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


class Events:
    """A Worker's events as they come, for tests to wait on."""

    def __init__(self) -> None:
        self.items: List[Dict[str, Any]] = []
        self._changed = threading.Condition()

    def __call__(self, event: Dict[str, Any]) -> None:
        with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def of(self, kind: str, task: Optional[str] = None) -> List[Dict[str, Any]]:
        with self._changed:
            return [
                e for e in self.items if e["event"] == kind and (task is None or e.get("task") == task)
            ]

    def wait_for(
        self, kind: str, task: Optional[str] = None, timeout: float = 10.0
    ) -> Dict[str, Any]:
        """The first event of this kind (for this task), waiting up to `timeout` for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.of(kind, task)
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind} event for {task} within {timeout} s: {self.items}")
                self._changed.wait(left)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Waits until `check()` is true; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.02)
