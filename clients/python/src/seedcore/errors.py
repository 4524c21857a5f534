"""The exceptions the client raises: one per kind of answer a caller handles differently.

Every error the server answers is a `SeedcoreError` carrying the HTTP status and the answer's
`detail` (a string, or for a 422 the list of field errors); a request that never got an answer
is a `TransportError`, whose status is None.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional


class SeedcoreError(Exception):
    """An error answer from the server, or (status None) no answer at all."""

    def __init__(self, status: Optional[int], detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{status}: {detail}" if status is not None else str(detail))


class TransportError(SeedcoreError):
    """The request got no HTTP answer: connection refused or reset, timeout, bad response."""

    def __init__(self, detail: str) -> None:
        super().__init__(None, detail)


class Unauthorized(SeedcoreError):
    """401: no token, or one the server does not know."""


class Forbidden(SeedcoreError):
    """403: the token lacks the scope this route needs."""


class NotFound(SeedcoreError):
    """404: no such task or worker."""


class Conflict(SeedcoreError):
    """409: the request conflicts with the current state (e.g. an ambiguous id prefix)."""


class LeaseLost(Conflict):
    """409 `lease lost`: the lease token is not the task's current one; nothing changed."""


class ValidationError(SeedcoreError):
    """422: the body or a parameter is invalid; `errors` lists each problem."""

    @property
    def errors(self) -> List[Dict[str, Any]]:
        """The field errors: dicts of `loc`, `msg` and `type`."""
        return list(self.detail) if isinstance(self.detail, list) else []


class Unavailable(SeedcoreError):
    """503: the server is overloaded or its database unavailable; try again shortly."""


class WaitTimeout(SeedcoreError, TimeoutError):
    """`Client.wait` gave up before the task finished."""

    def __init__(self, task_id: str, timeout: float) -> None:
        super().__init__(None, f"task {task_id} did not finish within {timeout} s")
        self.task_id = task_id


_BY_STATUS = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    503: Unavailable,
}


def error_for(status: int, detail: Any) -> SeedcoreError:
    """The exception for an error answer."""
    if status == 409 and detail == "lease lost":
        return LeaseLost(status, detail)
    return _BY_STATUS.get(status, SeedcoreError)(status, detail)
