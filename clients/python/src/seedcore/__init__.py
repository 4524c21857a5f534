"""seedcore's Python client: produce tasks and run pull workers over seedcore's HTTP API.

    from seedcore import Client, Worker
    client = Client("http://127.0.0.1:8000")
    worker = Worker(client, "mailer")

    @worker.handler("email.send")
    def send(task): ...

    worker.run()
"""

from .client import FINISHED, Client, LeaseState, Registration, task_body
from .errors import (
    Conflict,
    Forbidden,
    LeaseLost,
    NotFound,
    SeedcoreError,
    TransportError,
    Unauthorized,
    Unavailable,
    ValidationError,
    WaitTimeout,
)
from .task import Aborted, PermanentError, Task
from .version import __version__
from .worker import Worker

__all__ = [
    "FINISHED",
    "Aborted",
    "Client",
    "Conflict",
    "Forbidden",
    "LeaseLost",
    "LeaseState",
    "NotFound",
    "PermanentError",
    "Registration",
    "SeedcoreError",
    "Task",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
    "WaitTimeout",
    "Worker",
    "__version__",
    "task_body",
]
