"""HTTP/1.1 over a plain (or TLS) socket: one persistent keep-alive connection per thread.

Why not `http.client`: it sends headers and body in two writes and parses every answer's
headers with the `email` package, which costs more CPU than the rest of a worker's hot path.
This speaks only what seedcore's API needs: JSON bodies with a Content-Length, answers with a
Content-Length or chunked, keep-alive unless the server says `Connection: close`.

Invariants:
- each thread uses its own `Connection`, so the hot path (claim, complete) sets up no
  connection per request;
- a request that fails on a reused connection before any byte of an answer came is sent once
  more on a fresh one (the server closes idle keep-alive connections; such a request never
  reached it), unless `interrupt` ended it; every other failure is a `TransportError`;
- a connection whose answer was not read to its end is closed, never reused.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from typing import IO, Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from .errors import TransportError, error_for

_MAX_LINE = 65_536
_NO_BODY = (204, 304)


class _Stale(Exception):
    """The connection was closed before an answer began."""


class _Protocol(Exception):
    """The answer is not HTTP/1.1 as this client reads it."""


class Connection:
    """One keep-alive connection to the server, used by one thread at a time."""

    def __init__(self, host: str, port: int, tls: Optional[ssl.SSLContext]) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._sock: Optional[socket.socket] = None
        self._reader: Optional[IO[bytes]] = None
        self._timeout: Optional[float] = None
        self._used = False
        self._interrupted = False

    def request(self, head: bytes, body: Optional[bytes], timeout: float) -> Tuple[int, bytes]:
        """Sends one request (its head ends with the blank line) and reads the whole answer."""
        data = head if body is None else head + body
        reused = self._sock is not None and self._used
        try:
            return self._exchange(data, timeout)
        except (_Stale, ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as err:
            self.close()
            if not reused or self._interrupted:
                raise self._failed(err) from err
        except (OSError, _Protocol, ValueError) as err:
            self.close()
            raise self._failed(err) from err
        try:
            return self._exchange(data, timeout)
        except (_Stale, OSError, _Protocol, ValueError) as err:
            self.close()
            raise self._failed(err) from err

    def _failed(self, err: Exception) -> TransportError:
        self._interrupted = False
        reason = "connection closed before an answer" if isinstance(err, _Stale) else repr(err)
        return TransportError(f"{self._host}:{self._port}: {reason}")

    def _exchange(self, data: bytes, timeout: float) -> Tuple[int, bytes]:
        if self._sock is None:
            self._connect(timeout)
        sock, reader = self._sock, self._reader
        assert sock is not None and reader is not None
        if timeout != self._timeout:
            sock.settimeout(timeout)
            self._timeout = timeout
        sock.sendall(data)
        line = reader.readline(_MAX_LINE)
        if not line:
            raise _Stale()
        self._used = True
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise _Protocol(f"not an HTTP status line: {line[:80]!r}")
        status = int(parts[1])
        length, chunked, close = _read_headers(reader)
        if status in _NO_BODY:
            body = b""
        elif chunked:
            body = _read_chunked(reader)
        elif length is not None:
            body = reader.read(length)
            if len(body) != length:
                raise _Protocol("the answer ended before its Content-Length")
        else:
            body = reader.read()
            close = True
        if close:
            self.close()
        return status, body

    def _connect(self, timeout: float) -> None:
        sock = socket.create_connection((self._host, self._port), timeout)
        # The request goes out in one write; its answer should not wait on Nagle either.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self._host)
        self._sock = sock
        self._reader = sock.makefile("rb")
        self._timeout = timeout
        self._used = False

    def interrupt(self) -> None:
        """Ends a request another thread is waiting on: it fails with a TransportError and is
        not sent again."""
        self._interrupted = True
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        sock, reader = self._sock, self._reader
        self._sock = self._reader = None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()


def _read_headers(reader: IO[bytes]) -> Tuple[Optional[int], bool, bool]:
    """The answer's headers that matter here: (Content-Length, chunked, Connection: close)."""
    length: Optional[int] = None
    chunked = close = False
    while True:
        line = reader.readline(_MAX_LINE)
        if line in (b"\r\n", b"\n"):
            return length, chunked, close
        if not line:
            raise _Protocol("the answer ended in its headers")
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()


def _read_chunked(reader: IO[bytes]) -> bytes:
    chunks: List[bytes] = []
    while True:
        size_line = reader.readline(_MAX_LINE)
        if not size_line:
            raise _Protocol("the answer ended in a chunk")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunk = reader.read(size)
        if len(chunk) != size:
            raise _Protocol("the answer ended in a chunk")
        chunks.append(chunk)
        reader.readline(_MAX_LINE)


class Transport:
    """JSON requests to one server with one connection per calling thread."""

    def __init__(self, url: str, token: Optional[str], timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        host = self._host if ":" not in self._host else f"[{self._host}]"
        headers = {
            "Host": f"{host}:{self._port}",
            "Accept": "application/json",
            "User-Agent": "seedcore-python",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = _header_lines(headers)
        self._local = threading.local()

    def connection(self) -> Connection:
        """This thread's connection."""
        conn: Optional[Connection] = getattr(self._local, "conn", None)
        if conn is None:
            conn = Connection(self._host, self._port, self._tls)
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
        head = f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode() + self._headers
        if headers:
            head += _header_lines(headers)
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)
        elif method == "POST":
            head += b"Content-Length: 0\r\n\r\n"
        else:
            head += b"\r\n"
        status, raw = self.connection().request(
            head, data, self.timeout if timeout is None else timeout
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


def _header_lines(headers: Dict[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
