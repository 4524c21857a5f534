"""A remote executor: the HTTP endpoint a seedcore worker POSTs tasks to (`SEEDCORE_EXECUTORS`).

    from seedcore.executor import Executor

    executor = Executor(secret=os.environ.get("EXECUTOR_SECRET"))

    @executor.handler("report.build")
    def build(task, progress):
        for i, part in enumerate(task.params["parts"]):
            render(part)
            progress((i + 1) / len(task.params["parts"]))
        return {"parts": len(task.params["parts"])}

    executor.serve("127.0.0.1", 9000)  # SEEDCORE_EXECUTORS=report.build=http://127.0.0.1:9000/run

Each request runs its handler on a thread of its own. The answer is streamed as JSON lines
(`application/x-ndjson`): a `{"progress": f}` line for each `progress(f)` call, then the
answer `{"success", "result", "error", "retryable"}`, so the task's progress shows in seedcore
while the handler works. A handler that raises fails the attempt, retryable unless it raised
`PermanentError`; its error is `<type>: <message>` and the stack. When seedcore stops reading
(the task was cancelled or its attempt lost its lease), the next `progress` call raises
`Aborted` so the handler can stop.

With a `secret` (the executor's entry of `SEEDCORE_EXECUTOR_SECRETS`), every request's
signature is checked before its body is parsed: `x-seedcore-signature` must be `v1=` and the
HMAC-SHA256 of `<x-seedcore-timestamp>.<body>`, and the timestamp within `max_skew_seconds` of
this machine's clock; a request that fails either is answered 401 and runs nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

from .task import Aborted, PermanentError

TIMESTAMP_HEADER = "x-seedcore-timestamp"
SIGNATURE_HEADER = "x-seedcore-signature"
MAX_BODY_BYTES = 64 * 1024 * 1024

Progress = Callable[[float], None]


class ExecutorTask:
    """A task as seedcore sends it to an executor: one attempt, its parents' outcomes."""

    __slots__ = ("id", "type", "params", "domain", "drift_score", "attempt", "parents")

    def __init__(self, body: Dict[str, Any]) -> None:
        self.id: str = body["id"]
        self.type: str = body["type"]
        self.params: Dict[str, Any] = body.get("params") or {}
        self.domain: Optional[str] = body.get("domain")
        self.drift_score: float = body.get("drift_score", 0.0)
        self.attempt: int = body.get("attempt", 1)
        self.parents: List[Dict[str, Any]] = body.get("parents") or []


Handler = Callable[[ExecutorTask, Progress], Any]


class Executor:
    """Handlers by task type, served over HTTP to seedcore's workers."""

    def __init__(self, secret: Optional[str] = None, max_skew_seconds: float = 300.0) -> None:
        self._secret = secret.encode() if secret else None
        self._max_skew = max_skew_seconds
        self._handlers: Dict[str, Handler] = {}
        self._server: Optional[ThreadingHTTPServer] = None

    def handler(self, task_type: str) -> Callable[[Handler], Handler]:
        """Registers the decorated function for `task_type`: `fn(task, progress) -> result`."""

        def register(fn: Handler) -> Handler:
            self._handlers[task_type] = fn
            return fn

        return register

    def serve(self, host: str = "127.0.0.1", port: int = 9000) -> None:
        """Serves until `shutdown` is called (from another thread) or the process is stopped."""
        self.bind(host, port).serve_forever()

    def bind(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """The server, bound and not yet serving (port 0: a free port, see `server_port`)."""
        executor = self

        class Requests(_Requests):
            owner = executor

        self._server = ThreadingHTTPServer((host, port), Requests)
        self._server.daemon_threads = True
        return self._server

    def shutdown(self) -> None:
        """Stops serving; handlers running finish on their threads."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def signature_problem(self, timestamp: Optional[str], signature: Optional[str],
                          body: bytes) -> Optional[str]:
        """Why the request's signature does not hold, or None when it does (or none is set)."""
        if self._secret is None:
            return None
        if not timestamp or not signature:
            return "the request is not signed"
        try:
            sent = int(timestamp)
        except ValueError:
            return "the timestamp is not a number"
        if abs(time.time() - sent) > self._max_skew:
            return "the timestamp is too far from this machine's clock"
        mac = hmac.new(self._secret, timestamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest("v1=" + mac.hexdigest(), signature):
            return "the signature does not match"
        return None

    def handles(self, task_type: str) -> bool:
        """Whether a handler is registered for `task_type`."""
        return task_type in self._handlers

    def run(self, task: ExecutorTask, progress: Progress) -> Dict[str, Any]:
        """Runs the task's handler; returns the answer's last line."""
        handler = self._handlers[task.type]
        try:
            result = handler(task, progress)
        except Exception as err:  # noqa: BLE001 - every failure becomes the task's error
            if isinstance(err, Aborted):
                raise
            error = f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
            return {"success": False, "error": error,
                    "retryable": not isinstance(err, PermanentError)}
        return {"success": True, "result": result}


class _Requests(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: Executor

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the body is left unread
            self._refuse(413, f"the body's length is not a number up to {MAX_BODY_BYTES}")
            return
        body = self.rfile.read(length)
        problem = self.owner.signature_problem(
            self.headers.get(TIMESTAMP_HEADER), self.headers.get(SIGNATURE_HEADER), body)
        if problem is not None:
            self._refuse(401, problem)
            return
        try:
            task = ExecutorTask(json.loads(body))
            if not isinstance(task.id, str) or not isinstance(task.type, str):
                raise TypeError("id and type are strings")
        except (ValueError, KeyError, TypeError, AttributeError):
            self._refuse(400, "the body is not a task")
            return
        if not self.owner.handles(task.type):
            self._refuse(404, f"no handler for task type {task.type!r}")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = _Lines(self.wfile)
        try:
            answer = self.owner.run(task, lines.progress)
            try:
                lines.send(answer)
            except (TypeError, ValueError) as err:
                lines.send({"success": False, "retryable": False,
                            "error": f"the handler's result is not JSON: {err}"})
            lines.close()
        except Aborted:
            self.close_connection = True

    def _refuse(self, status: int, detail: str) -> None:
        data = json.dumps({"detail": detail}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass


class _Lines:
    """The answer's lines, each sent as one chunk the moment it is written."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._lock = threading.Lock()

    def progress(self, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress must be a number from 0 to 1, got {fraction}")
        self.send({"progress": fraction})

    def send(self, line: Dict[str, Any]) -> None:
        data = json.dumps(line).encode() + b"\n"
        with self._lock:
            try:
                self._out.write(b"%x\r\n%s\r\n" % (len(data), data))
                self._out.flush()
            except (BrokenPipeError, ConnectionResetError) as err:
                raise Aborted("seedcore stopped reading: the task was cancelled or its "
                              "attempt lost its lease") from err

    def close(self) -> None:
        with self._lock:
            try:
                self._out.write(b"0\r\n\r\n")
                self._out.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
