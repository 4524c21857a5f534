"""HTTP/1.1 over the standard library: one persistent keep-alive connection per thread.

Each thread reuses its own `http.client` connection, so the hot path (claim, complete) sets up
no connection per request. A request that fails on a reused connection before any answer came
is sent once more on a fresh one: the server closes idle keep-alive connections, and such a
request never reached it. Everything else that prevents an answer is a `TransportError`.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

from .errors import TransportError, error_for

_STALE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)
_FAILED = (OSError, http.client.HTTPException)


class Connection:
    """One keep-alive connection to the server, used by one thread at a time."""

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self._scheme = scheme
        self._host = host
        self._port = port
        self._conn: Optional[http.client.HTTPConnection] = None
        self._used = False
        self._interrupted = False

    def request(
        self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str], timeout: float
    ) -> Tuple[int, bytes]:
        """Sends one request and reads the whole answer: (status, body)."""
        reused = self._conn is not None and self._used
        try:
            return self._exchange(method, path, body, headers, timeout)
        except _STALE as err:
            self.close()
            if not reused or self._interrupted:
                self._interrupted = False
                raise TransportError(f"{method} {path}: {err!r}") from err
        except _FAILED as err:
            self.close()
            self._interrupted = False
            raise TransportError(f"{method} {path}: {err!r}") from err
        try:
            return self._exchange(method, path, body, headers, timeout)
        except _FAILED as err:
            self.close()
            raise TransportError(f"{method} {path}: {err!r}") from err

    def _exchange(
        self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str], timeout: float
    ) -> Tuple[int, bytes]:
        conn = self._conn or self._connect(timeout)
        sock = conn.sock
        if sock is not None:
            sock.settimeout(timeout)
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        data = response.read()
        self._used = True
        if response.will_close:
            self.close()
        return response.status, data

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._scheme == "https":
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        conn.connect()
        if conn.sock is not None:
            # Headers and body go out in one write, but the answer should not wait on Nagle.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        self._used = False
        return conn

    def interrupt(self) -> None:
        """Ends a request another thread is waiting on (it fails with a TransportError, and is
        not sent again)."""
        self._interrupted = True
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class Transport:
    """JSON requests to one server with one connection per calling thread."""

    def __init__(self, url: str, token: Optional[str], timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()

    def connection(self) -> Connection:
        """This thread's connection."""
        conn: Optional[Connection] = getattr(self._local, "conn", None)
        if conn is None:
            conn = Connection(self._scheme, self._host, self._port)
            self._local.conn = conn
        return conn

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: Optional[float] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Any:
        """Sends a request and returns the decoded answer (None for an empty one).

        Raises the `SeedcoreError` subclass that matches an error status.
        """
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        sent = self._headers if headers is None else {**self._headers, **headers}
        status, raw = self.connection().request(
            method, self._prefix + path, data, sent, self.timeout if timeout is None else timeout
        )
        answer = _decode(raw)
        if status >= 400:
            detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
            raise error_for(status, detail)
        return answer

    def close(self) -> None:
        """Closes this thread's connection."""
        conn: Optional[Connection] = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
