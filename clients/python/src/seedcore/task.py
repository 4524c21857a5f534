"""A claimed task as a handler sees it: its fields, its lease and its abort flag.

Invariant: `aborted` is set at most once, and `reason` is set before it, so a handler that
sees the flag always finds out why. Whoever aborts a task (the worker, or a heartbeat sent
from the handler) goes through `Task.abort`, which runs the owner's hook first.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from .errors import LeaseLost, SeedcoreError

if TYPE_CHECKING:
    from .client import Client, LeaseState


# Aborts are rare: one lock for all tasks keeps a task's construction cheap.
_ABORTING = threading.Lock()


class Aborted(Exception):
    """The task was aborted: cancelled, its lease lost, or the worker shutting down."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentError(Exception):
    """Raised by a handler, fails the task for good: no retry whatever attempts are left."""


class Task:
    """One attempt of a task, held under a lease until it is completed, failed or released."""

    __slots__ = (
        "id",
        "attempt",
        "max_attempts",
        "type",
        "params",
        "queue",
        "priority",
        "timeout_seconds",
        "parents",
        "traceparent",
        "lease_token",
        "lease_expires_at",
        "lease_deadline",
        "fence_margin",
        "aborted",
        "reason",
        "_client",
        "_lease_seconds",
        "_on_abort",
    )

    def __init__(
        self, client: Client, data: Dict[str, Any], deadline: float, lease_seconds: Optional[float]
    ) -> None:
        self.id: str = data["id"]
        self.attempt: int = data["attempt"]
        self.max_attempts: int = data.get("max_attempts", 1)
        self.type: str = data["type"]
        self.params: Dict[str, Any] = data.get("params") or {}
        self.queue: str = data.get("queue", "default")
        self.priority: int = data.get("priority", 0)
        self.timeout_seconds: Optional[float] = data.get("timeout_seconds")
        self.parents: List[str] = data.get("parents") or []
        self.traceparent: Optional[str] = data.get("traceparent")
        self.lease_token: str = data["lease_token"]
        #: When the lease runs out unless renewed, as the server wrote it (RFC 3339, UTC).
        self.lease_expires_at: Optional[str] = data.get("lease_expires_at")
        #: The same moment on this process's monotonic clock, never later than the server's.
        self.lease_deadline = deadline
        #: The task is fenced (aborted, `lease_lost`) this long before `lease_deadline`: a
        #: tenth of the lease, 0.1 to 2 s, for the trip of a heartbeat that would renew it.
        self.fence_margin = min(2.0, max(0.1, (deadline - time.monotonic()) / 10.0))
        #: Set once the task is aborted; `reason` says why.
        self.aborted = threading.Event()
        self.reason: Optional[str] = None
        self._client = client
        self._lease_seconds = lease_seconds
        self._on_abort: Optional[Callable[[Task, str], None]] = None

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, type={self.type!r}, attempt={self.attempt})"

    def check(self) -> None:
        """Raises `Aborted` when the task was aborted; a long handler calls it between steps.

        A lease that no heartbeat renewed in time aborts the task here too (`lease_lost`).
        """
        self.fence()
        if self.aborted.is_set():
            raise Aborted(self.reason or "aborted")

    def fence(self) -> bool:
        """Aborts the task (`lease_lost`) if its lease may have run out; True if aborted."""
        if self.reason is None and time.monotonic() >= self.lease_deadline - self.fence_margin:
            self.abort("lease_lost")
        return self.reason is not None

    def heartbeat(self, progress: Optional[float] = None) -> Optional[LeaseState]:
        """Renews the lease now and reports progress (0 to 1).

        A cancelled task or a lost lease aborts the task and raises `Aborted`. Without an answer
        (network errors) it returns None: the worker's own heartbeats keep trying.
        """
        started = time.monotonic()
        try:
            state = self._client.heartbeat(
                self.id, self.lease_token, extend_seconds=self._lease_seconds, progress=progress
            )
        except LeaseLost:
            self.abort("lease_lost")
            raise Aborted("lease_lost") from None
        except SeedcoreError as err:
            if err.status is not None and err.status < 500:
                raise
            return None
        self.renewed(started, state)
        self.check()
        return state

    def renewed(self, started: float, state: LeaseState) -> None:
        """Records a heartbeat's answer: a later deadline, or the abort of a cancelled task."""
        if state.cancel_requested:
            self.abort("cancelled")
        elif state.lease_expires_at is not None:
            self.lease_expires_at = state.lease_expires_at
            lease = self._lease_seconds
            if lease is None:
                lease = seconds_until(state.lease_expires_at)
            self.lease_deadline = max(self.lease_deadline, started + lease)

    def abort(self, reason: str) -> bool:
        """Aborts the task for this reason; False when it was aborted already."""
        with _ABORTING:
            if self.reason is not None:
                return False
            self.reason = reason
        hook = self._on_abort
        if hook is not None:
            hook(self, reason)
        self.aborted.set()
        return True


def seconds_until(stamp: str) -> float:
    """Seconds from now until an RFC 3339 timestamp (negative when past)."""
    return (parse_timestamp(stamp) - datetime.now(timezone.utc)).total_seconds()


def parse_timestamp(stamp: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime (Python 3.9's fromisoformat takes no `Z`)."""
    text = stamp.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, sep, rest = text.partition(".")
    if sep:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + rest[:digits][:6].ljust(6, "0") + rest[digits:]
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
