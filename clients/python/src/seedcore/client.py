"""The HTTP client: the producer API (create, get, wait for, cancel tasks) and the low-level
pull-worker API (register, claim, heartbeat, complete, fail, release).

Each method is one request (`wait` polls), on the calling thread's keep-alive connection, and
raises the `SeedcoreError` subclass of any error answer. The `Worker` builds on these methods;
they are public so a program can drive the protocol itself.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union
from urllib.parse import quote

from .errors import WaitTimeout
from .task import Task, seconds_until
from .transport import Transport
from .version import __version__

#: The statuses a task does not leave by itself.
FINISHED = frozenset({"completed", "failed", "cancelled"})

_MAX_WAIT_MS = 30_000


class Registration:
    """A registered pull worker: its id and the rhythm the server asks it to keep."""

    __slots__ = (
        "id",
        "heartbeat_interval_seconds",
        "default_lease_seconds",
        "max_lease_seconds",
        "state",
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.id: str = data["id"]
        self.heartbeat_interval_seconds: float = float(data["heartbeat_interval_seconds"])
        self.default_lease_seconds: float = float(data["default_lease_seconds"])
        self.max_lease_seconds: float = float(data["max_lease_seconds"])
        self.state: str = data.get("state", "running")

    def __repr__(self) -> str:
        return f"Registration(id={self.id!r}, state={self.state!r})"


class LeaseState:
    """A task heartbeat's answer: the renewed lease, or the news that the task was cancelled."""

    __slots__ = ("lease_expires_at", "cancel_requested")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.lease_expires_at: Optional[str] = data.get("lease_expires_at")
        self.cancel_requested: bool = bool(data.get("cancel_requested", False))

    def __repr__(self) -> str:
        return (
            f"LeaseState(lease_expires_at={self.lease_expires_at!r}, "
            f"cancel_requested={self.cancel_requested})"
        )


Timestamp = Union[datetime, str]


class Client:
    """A seedcore server at `url` (e.g. `http://127.0.0.1:8000`), with an optional API token.

    `timeout` bounds each request in seconds; a claim's long poll gets its wait on top. One
    client may be shared by any number of threads.
    """

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._http = Transport(self.url, token, timeout)

    def with_timeout(self, timeout: float) -> Client:
        """A client of the same server and token whose requests time out after `timeout`."""
        return Client(self.url, self._token, timeout)

    def close(self) -> None:
        """Closes the calling thread's connection (others close when their threads end)."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Producer API

    def create_task(
        self,
        type: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        queue: Optional[str] = None,
        priority: Optional[int] = None,
        run_at: Optional[Timestamp] = None,
        delay_seconds: Optional[float] = None,
        max_attempts: Optional[int] = None,
        timeout_seconds: Optional[float] = None,
        description: Optional[str] = None,
        domain: Optional[str] = None,
        drift_score: Optional[float] = None,
        idempotency_key: Optional[str] = None,
        depends_on: Optional[Sequence[str]] = None,
        run_on_failure: Optional[bool] = None,
        attached_fact_ids: Optional[Sequence[str]] = None,
        run_immediately: bool = True,
        traceparent: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Creates a task and returns it as stored.

        It is queued at once unless `run_immediately` is False (then it waits, `created`, for
        `POST /tasks/{id}/run`). `run_at` (a datetime or RFC 3339 text) or `delay_seconds`
        hold it back until then.
        """
        body = task_body(
            type,
            params,
            queue=queue,
            priority=priority,
            run_at=run_at,
            delay_seconds=delay_seconds,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            description=description,
            domain=domain,
            drift_score=drift_score,
            depends_on=depends_on,
            run_on_failure=run_on_failure,
            attached_fact_ids=attached_fact_ids,
            run_immediately=run_immediately,
        )
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        headers = {"traceparent": traceparent} if traceparent else None
        task: Dict[str, Any] = self._http.call("POST", "/api/v1/tasks", body, headers=headers)
        return task

    def create_tasks(
        self, tasks: Iterable[Mapping[str, Any]], traceparent: Optional[str] = None
    ) -> List[str]:
        """Creates up to 10,000 tasks at once, all or none; returns their ids in order.

        Each item is a create body (`task_body` builds one); items without `run_immediately`
        are queued at once.
        """
        items = [{"run_immediately": True, **task} for task in tasks]
        headers = {"traceparent": traceparent} if traceparent else None
        created = self._http.call("POST", "/api/v1/tasks/bulk", {"tasks": items}, headers=headers)
        return list(created["ids"])

    def get_task(self, task_id: str) -> Dict[str, Any]:
        """The task (NotFound when there is none)."""
        task: Dict[str, Any] = self._http.call("GET", f"/api/v1/tasks/{_segment(task_id)}")
        return task

    def cancel_task(self, task_id: str) -> Dict[str, Any]:
        """Cancels the task unless it already finished; returns it."""
        task: Dict[str, Any] = self._http.call("POST", f"/api/v1/tasks/{_segment(task_id)}/cancel")
        return task

    def wait(self, task_id: str, timeout: float = 60.0) -> Dict[str, Any]:
        """Polls until the task is completed, failed or cancelled, and returns it.

        Polls start 50 ms apart and back off to 1 s; raises `WaitTimeout` after `timeout`.
        """
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            task = self.get_task(task_id)
            if task.get("status") in FINISHED:
                return task
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(task_id, timeout)
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)

    # Pull-worker API

    def register_worker(
        self,
        name: str,
        queues: Optional[Sequence[str]] = None,
        types: Optional[Sequence[str]] = None,
        concurrency: int = 1,
        labels: Optional[Mapping[str, Any]] = None,
    ) -> Registration:
        """Registers a pull worker; its claims default to these queues and types."""
        body: Dict[str, Any] = {
            "name": name,
            "concurrency": concurrency,
            "client_name": "seedcore-python",
            "client_version": __version__,
        }
        if queues is not None:
            body["queues"] = list(queues)
        if types is not None:
            body["types"] = list(types)
        if labels is not None:
            body["labels"] = dict(labels)
        return Registration(self._http.call("POST", "/api/v1/workers", body))

    def worker_heartbeat(self, worker_id: str) -> str:
        """Tells the server the worker is alive; returns what the operator asks of it:
        `running`, `quiet` (claim nothing more) or `terminate` (stop)."""
        path = f"/api/v1/workers/{_segment(worker_id)}/heartbeat"
        state: str = self._http.call("POST", path)["state"]
        return state

    def claim(
        self,
        worker_id: str,
        max: int = 1,
        wait_ms: int = 0,
        queues: Optional[Sequence[str]] = None,
        types: Optional[Sequence[str]] = None,
        lease_seconds: Optional[float] = None,
        queue_concurrency: Optional[Mapping[str, int]] = None,
    ) -> List[Task]:
        """Claims up to `max` (1 to 100) tasks, waiting up to `wait_ms` (at most 30,000) for
        one to be ready; an empty list when none came or the worker was told to stop claiming.
        `queue_concurrency` caps a queue: no task of it is claimed while the worker holds that
        many of them running (e.g. `{"emails": 4}`).
        """
        body: Dict[str, Any] = {"worker_id": worker_id, "max": max, "wait_ms": wait_ms}
        if queues is not None:
            body["queues"] = list(queues)
        if types is not None:
            body["types"] = list(types)
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        if queue_concurrency:
            body["queue_concurrency"] = [f"{q}={n}" for q, n in queue_concurrency.items()]
        timeout = self.timeout + min(wait_ms, _MAX_WAIT_MS) / 1000.0
        answer = self._http.call("POST", "/api/v1/tasks/claim", body, timeout=timeout)
        if not answer:
            return []
        # A long poll claims just before it answers: the lease starts about when the answer
        # arrives, less the answer's trip, which the worker's fencing margin covers.
        received = time.monotonic()
        tasks = []
        for data in answer["tasks"]:
            lease = lease_seconds
            if lease is None:
                lease = seconds_until(data["lease_expires_at"])
            tasks.append(Task(self, data, received + lease, lease_seconds))
        return tasks

    def heartbeat(
        self,
        task_id: str,
        lease_token: str,
        extend_seconds: Optional[float] = None,
        progress: Optional[float] = None,
    ) -> LeaseState:
        """Renews a task's lease (for `extend_seconds`, default the server's lease); the
        answer says whether the task was cancelled. LeaseLost when the lease is gone."""
        body: Dict[str, Any] = {"lease_token": lease_token}
        if extend_seconds is not None:
            body["extend_seconds"] = extend_seconds
        if progress is not None:
            body["progress"] = progress
        path = f"/api/v1/tasks/{_segment(task_id)}/heartbeat"
        return LeaseState(self._http.call("POST", path, body))

    def complete(self, task_id: str, lease_token: str, result: Any = None) -> Dict[str, Any]:
        """Completes the attempt with this result (any JSON); a repeat with the same token
        answers the same. LeaseLost when the lease is gone."""
        body = {"lease_token": lease_token, "result": result}
        ended: Dict[str, Any] = self._http.call(
            "POST", f"/api/v1/tasks/{_segment(task_id)}/complete", body
        )
        return ended

    def complete_many(self, completions: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """Completes up to 100 attempts (distinct tasks) in one request.

        Each item is a dict of `task_id`, `lease_token` and optionally `result` (any JSON,
        default null). Returns one `{"task_id", "outcome"}` per item in the order sent:
        `outcome` is `completed` (a repeat with the same token answers so too) or `lease_lost`
        (nothing changed for that task). A malformed body is a ValidationError for the whole
        request, nothing recorded; a server without the endpoint answers 404 or 405.
        """
        items = [
            {
                "task_id": item["task_id"],
                "lease_token": item["lease_token"],
                "result": item.get("result"),
            }
            for item in completions
        ]
        answer = self._http.call("POST", "/api/v1/tasks/complete", {"completions": items})
        return list(answer["items"])

    def fail(
        self,
        task_id: str,
        lease_token: str,
        error_type: str,
        message: str,
        stack: Optional[str] = None,
        retryable: bool = False,
        retry_after_seconds: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Fails the attempt. A retryable failure with attempts left runs again later (the
        answer's status is `retry`); otherwise the task fails (`failed`)."""
        error: Dict[str, Any] = {"type": error_type, "message": message}
        if stack:
            error["stack"] = stack
        body: Dict[str, Any] = {"lease_token": lease_token, "error": error, "retryable": retryable}
        if retry_after_seconds is not None:
            body["retry_after_seconds"] = retry_after_seconds
        ended: Dict[str, Any] = self._http.call(
            "POST", f"/api/v1/tasks/{_segment(task_id)}/fail", body
        )
        return ended

    def release(self, task_id: str, lease_token: str) -> Dict[str, Any]:
        """Hands the task back, queued again with this attempt uncounted."""
        body = {"lease_token": lease_token}
        ended: Dict[str, Any] = self._http.call(
            "POST", f"/api/v1/tasks/{_segment(task_id)}/release", body
        )
        return ended


def task_body(
    type: str,
    params: Optional[Mapping[str, Any]] = None,
    *,
    queue: Optional[str] = None,
    priority: Optional[int] = None,
    run_at: Optional[Timestamp] = None,
    delay_seconds: Optional[float] = None,
    max_attempts: Optional[int] = None,
    timeout_seconds: Optional[float] = None,
    description: Optional[str] = None,
    domain: Optional[str] = None,
    drift_score: Optional[float] = None,
    depends_on: Optional[Sequence[str]] = None,
    run_on_failure: Optional[bool] = None,
    attached_fact_ids: Optional[Sequence[str]] = None,
    run_immediately: bool = True,
) -> Dict[str, Any]:
    """A task's create body, with only the fields given (for `Client.create_tasks`)."""
    body: Dict[str, Any] = {"type": type, "run_immediately": run_immediately}
    optional: Dict[str, Any] = {
        "params": None if params is None else dict(params),
        "queue": queue,
        "priority": priority,
        "run_at": _timestamp(run_at),
        "delay_seconds": delay_seconds,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "description": description,
        "domain": domain,
        "drift_score": drift_score,
        "depends_on": None if depends_on is None else list(depends_on),
        "run_on_failure": run_on_failure,
        "attached_fact_ids": None if attached_fact_ids is None else list(attached_fact_ids),
    }
    body.update((key, value) for key, value in optional.items() if value is not None)
    return body


def _timestamp(value: Optional[Timestamp]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _segment(value: str) -> str:
    return quote(value, safe=":")
