"""W5's worker: one process of the Python client (clients/python) running no-op tasks.

Started by seedcore-bench with the server's URL, the task type and the number of handler
threads; it runs until the tool kills it. With --starts, each handler appends
"<task id> <unix time>" to that file as it starts, for the pickup figure.
"""

import argparse
import os
import time

from seedcore import Client, Worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--type", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--starts")
    args = parser.parse_args()

    starts = open(args.starts, "a", buffering=1) if args.starts else None
    worker = Worker(
        Client(args.url),
        name=f"w5-{os.getpid()}",
        types=[args.type],
        concurrency=args.concurrency,
    )

    def noop(task):  # type: ignore[no-untyped-def]
        if starts is not None:
            starts.write(f"{task.id} {time.time():.6f}\n")
        return None

    worker.register(args.type, noop)
    worker.run()


if __name__ == "__main__":
    main()
