"""The workers under test: each a subprocess running a client's conformance program, started
with the protocol's environment, appending JSON lines to a log file the suite reads.

Invariants: every process a scenario starts is ended when the scenario ends (SIGKILL as a last
resort), and a worker's stdout and stderr go to a file of their own for the report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


class ScenarioFailed(Exception):
    """What a scenario expected and did not see."""


@dataclass(frozen=True)
class Client:
    """How to run one client's conformance program."""

    name: str
    command: list[str]
    cwd: Path


class Log:
    """A JSON-lines file several workers append to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def lines(self) -> list[dict[str, Any]]:
        """Every complete line so far; a last line without its newline is still being written."""
        text = self.path.read_text(encoding="utf-8", errors="replace")
        complete = text[: text.rfind("\n") + 1]
        lines = []
        for number, raw in enumerate(complete.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                raise ScenarioFailed(
                    f"{self.path.name} line {number} is not JSON: {raw[:200]!r}"
                ) from None
            if not isinstance(line, dict) or "event" not in line or "worker" not in line:
                raise ScenarioFailed(
                    f"{self.path.name} line {number} lacks `event` or `worker`: {raw[:200]!r}"
                )
            lines.append(line)
        return lines

    def tail(self, count: int = 25) -> str:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-count:])


class Worker:
    """One worker process of a client."""

    def __init__(
        self, client: Client, name: str, log: Log, workdir: Path, env: dict[str, str]
    ) -> None:
        self.client = client
        self.name = name
        self.log = log
        self.output_path = workdir / f"{name}.out"
        with open(self.output_path, "ab") as output:
            self.process = subprocess.Popen(
                client.command,
                cwd=client.cwd,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.time()

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """This worker's log lines, optionally only those of `event` with these field values."""
        return [
            line
            for line in self.log.lines()
            if line.get("worker") == self.name
            and (event is None or line.get("event") == event)
            and all(line.get(key) == value for key, value in fields.items())
        ]

    def worker_id(self) -> str | None:
        registered = self.lines("registered")
        return registered[0].get("worker_id") if registered else None

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def output_tail(self, count: int = 15) -> str:
        text = self.output_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-count:])

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def end(self) -> None:
        """Stops the process whatever state it is in (a stopped one is continued first)."""
        if not self.alive():
            return
        for signum in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                return
        self.process.wait(timeout=10)


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    alive: list[Worker] = (),  # type: ignore[assignment]
    every: float = 0.05,
) -> Any:
    """Polls `check` until it returns something truthy and returns that; fails after `timeout`
    seconds, or as soon as one of the `alive` workers exits, saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        for worker in alive:
            if not worker.alive():
                raise ScenarioFailed(
                    f"waiting for {what}: worker {worker.name} exited with code "
                    f"{worker.process.returncode}"
                )
        if time.monotonic() >= deadline:
            raise ScenarioFailed(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(every)
