"""Drain rate: how fast Worker processes of this client empty a queue of noop tasks.

    python clients/python/bench/drain.py [TASKS=5000] [CONCURRENCY=16] [PROCESSES=1]

Against SEEDCORE_URL (and SEEDCORE_TOKEN) when set; otherwise it starts its own
`seedcore serve` as the tests do (SEEDCORE_BIN; DATABASE_URL, when set, is passed on so the run
uses PostgreSQL). The queue is paused while the tasks are created and the workers register,
then resumed: the clock runs from the resume to the last completion. Bounded: it gives up after
two minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))

from seedcore import Client, Worker  # noqa: E402

TASK_TYPE = "noop.bench"
GIVE_UP_SECONDS = 120.0


def work(url: str, queue: str, concurrency: int) -> None:
    """One worker process: completes every task of the queue with an empty result."""
    client = Client(url, os.environ.get("SEEDCORE_TOKEN"))
    worker = Worker(client, f"drain-{os.getpid()}", queues=[queue], concurrency=concurrency)
    worker.register(TASK_TYPE, lambda task: None)
    worker.run()


def completed(client: Client) -> int:
    """Completed tasks of the benchmark's type, this run's and any earlier run's."""
    page = client._http.call("GET", f"/api/v1/tasks?status=completed&type={TASK_TYPE}&limit=1")
    return int(page["total"])


def main(total: int, concurrency: int, processes: int) -> None:
    server = None
    url = os.environ.get("SEEDCORE_URL")
    if not url:
        from serving import Server  # type: ignore[import-not-found, unused-ignore]

        env = {"DATABASE_URL": os.environ["DATABASE_URL"]} if os.environ.get("DATABASE_URL") else {}
        server = Server(env)
        server.start()
        url = server.url
    workers: List["subprocess.Popen[bytes]"] = []
    try:
        client = Client(url, os.environ.get("SEEDCORE_TOKEN"))
        queue = f"drain-{os.getpid()}"
        client._http.call("POST", f"/api/v1/queues/{queue}/pause")
        before = completed(client)
        for made in range(0, total, 10_000):
            batch = min(10_000, total - made)
            client.create_tasks([{"type": TASK_TYPE, "queue": queue}] * batch)
        script = [sys.executable, __file__, "--work", url, queue, str(concurrency)]
        workers = [subprocess.Popen(script) for _ in range(processes)]
        time.sleep(1.0)  # they import and register
        started = time.monotonic()
        client._http.call("POST", f"/api/v1/queues/{queue}/resume")
        done: Optional[int] = None
        while time.monotonic() - started < GIVE_UP_SECONDS:
            done = completed(client) - before
            if done >= total:
                break
            time.sleep(0.1)
        seconds = time.monotonic() - started
        print(
            f"{done} of {total} noop tasks in {seconds:.2f} s: {(done or 0) / seconds:.0f} tasks/s "
            f"({processes} process(es), concurrency {concurrency})"
        )
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(30)
        if server is not None:
            server.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--work"]:
        work(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        args = [int(a) for a in sys.argv[1:4]]
        main(*(args + [5000, 16, 1][len(args):]))
