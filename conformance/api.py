"""The operator's side of the HTTP API, as the suite uses it: create, read and cancel tasks,
read their audit trails, and give pull workers orders.

Every call carries the suite's bearer token; an answer outside 2xx raises ApiError with its
status and body, so a scenario fails with what the server said.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

TASK_TYPE = "conformance.work"


class ApiError(Exception):
    """An HTTP answer the suite did not expect."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:500]}")
        self.status = status


class Api:
    """A small blocking client of one server."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("accept", "application/json")
        if data is not None:
            request.add_header("content-type", "application/json")
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as err:
            raise ApiError(method, path, err.code, err.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def create_tasks(self, queue: str, seconds: list[float], max_attempts: int = 3) -> list[str]:
        """Creates one queued task per entry of `seconds`, in one transaction."""
        items = [
            {
                "type": TASK_TYPE,
                "params": {"seconds": s},
                "queue": queue,
                "run_immediately": True,
                "max_attempts": max_attempts,
            }
            for s in seconds
        ]
        return self.call("POST", "/api/v1/tasks/bulk", {"tasks": items})["ids"]

    def create_task(self, queue: str, seconds: float) -> str:
        return self.create_tasks(queue, [seconds])[0]

    def task(self, task_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/tasks/{task_id}")

    def events(self, task_id: str) -> list[dict[str, Any]]:
        """The task's audit trail, oldest first."""
        return self.call("GET", f"/api/v1/tasks/{task_id}/events")["items"]

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/tasks/{task_id}/cancel")

    def worker_token(self, name: str) -> str:
        """A new token of role `worker`: the pull routes and reading tasks, nothing more."""
        return self.call("POST", "/api/v1/tokens", {"name": name, "role": "worker"})["token"]

    def quiet(self, worker_id: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/workers/{worker_id}/quiet")

    def terminate(self, worker_id: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/workers/{worker_id}/terminate")
