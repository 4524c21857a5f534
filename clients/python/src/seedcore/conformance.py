"""The conformance worker: one `Worker` of this client, run by seedcore's conformance suite.

`python -m seedcore.conformance` reads SEEDCORE_URL, SEEDCORE_TOKEN, CONFORMANCE_NAME,
CONFORMANCE_QUEUES, CONFORMANCE_CONCURRENCY, CONFORMANCE_LEASE_SECONDS,
CONFORMANCE_GRACE_SECONDS and CONFORMANCE_LOG, serves the task type `conformance.work`, and
appends one JSON line per lifecycle event to the log, each with a single write() on a file
opened for appending (several processes share the file).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Dict, Optional

from .backoff import Backoff
from .client import Client
from .errors import SeedcoreError
from .task import Aborted, Task
from .worker import Worker

TASK_TYPE = "conformance.work"
#: The Worker's events the protocol logs (it adds `late_completion` itself).
LOGGED = frozenset(
    {"registered", "started", "completed", "failed", "aborted", "released", "state", "stopped"}
)
#: How long a late completion is retried while the server cannot be reached.
LATE_COMPLETION_PATIENCE = 30.0


class Log:
    """JSON lines appended to a file shared with other processes."""

    def __init__(self, path: Optional[str], worker: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None
        self._worker = worker
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def write(self, event: Dict[str, Any]) -> None:
        line = {**event, "worker": self._worker, "pid": self._pid, "ts": time.time()}
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            else:
                os.write(self._fd, data)


def main() -> int:
    env = os.environ
    name = env.get("CONFORMANCE_NAME") or f"conformance-{os.getpid()}"
    client = Client(env.get("SEEDCORE_URL", "http://127.0.0.1:8000"), env.get("SEEDCORE_TOKEN"))
    log = Log(env.get("CONFORMANCE_LOG"), name)
    queues = [q.strip() for q in env.get("CONFORMANCE_QUEUES", "default").split(",") if q.strip()]
    lease = env.get("CONFORMANCE_LEASE_SECONDS")

    def on_event(event: Dict[str, Any]) -> None:
        if event["event"] in LOGGED:
            log.write(event)

    worker = Worker(
        client,
        name,
        queues=queues or None,
        concurrency=int(env.get("CONFORMANCE_CONCURRENCY") or 4),
        lease_seconds=float(lease) if lease else None,
        grace_seconds=float(env.get("CONFORMANCE_GRACE_SECONDS") or 5),
        on_event=on_event,
    )

    @worker.handler(TASK_TYPE)
    def work(task: Task) -> Dict[str, Any]:
        seconds = float(task.params.get("seconds") or 0)
        deadline = time.monotonic() + seconds
        while True:
            try:
                task.check()
            except Aborted:
                late_completion(client, log, task, {"worker": name})
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                return {"worker": name}
            task.aborted.wait(min(left, 0.05))

    worker.run()
    return 0


def late_completion(client: Client, log: Log, task: Task, result: Any) -> None:
    """Completes an aborted task anyway, as a stale worker would, and logs the answer's status
    (None if the server could not be reached in time)."""
    status: Optional[int] = None
    backoff = Backoff()
    give_up = time.monotonic() + LATE_COMPLETION_PATIENCE
    while time.monotonic() < give_up:
        try:
            client.complete(task.id, task.lease_token, result)
            status = 200
            break
        except SeedcoreError as err:
            status = err.status
            if status is not None:
                break
        time.sleep(backoff.next())
    log.write({"event": "late_completion", "task": task.id, "status": status})


if __name__ == "__main__":
    sys.exit(main())
