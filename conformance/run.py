#!/usr/bin/env python3
"""Runs the conformance scenarios against each client's Worker, as subprocesses, on a real
`seedcore serve` over a fresh PostgreSQL database.

Usage:
    python3 conformance/run.py [--client python] [--client typescript] [--scenario NAME]...

Settings from the environment: SEEDCORE_TEST_DATABASE_URL (an admin URL of a PostgreSQL server
that may create databases; required), SEEDCORE_BIN (default target/debug/seedcore),
CONFORMANCE_PYTHON (the interpreter that has clients/python installed; default
target/conformance/venv/bin/python). Exits 0 only when every scenario passed for every client.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import Api, ApiError  # noqa: E402
from scenarios import SCENARIOS, Run  # noqa: E402
from server import Server, SetupError  # noqa: E402
from workers import Client, ScenarioFailed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Generous bounds: a scenario that passes takes a fraction of its bound.
SCENARIO_BOUND_SECONDS = 150.0


def clients(names: list[str], python: str) -> list[Client]:
    known = {
        "python": Client("python", [python, "-m", "seedcore.conformance"], ROOT),
        "typescript": Client(
            "typescript", ["node", str(ROOT / "clients/typescript/dist/conformance.js")], ROOT
        ),
    }
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit(f"conformance: unknown client {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[name] for name in names]


# Finds the module without running it: the program starts a worker when run.
FIND_MODULE = (
    "import importlib.util, sys; "
    "sys.exit(0 if importlib.util.find_spec('seedcore.conformance') else 'no module seedcore.conformance')"
)


def missing(client: Client) -> str | None:
    """Why the client's conformance program cannot run, if it cannot."""
    if client.name == "python":
        probe = subprocess.run(
            [client.command[0], "-c", FIND_MODULE],
            capture_output=True,
            text=True,
            cwd=client.cwd,
        )
        if probe.returncode != 0:
            return f"{client.command[0]} cannot find seedcore.conformance: {probe.stderr.strip()[-300:]}"
    elif not Path(client.command[-1]).is_file():
        return f"{client.command[-1]} is missing (npm ci && npm run build in clients/typescript)"
    if shutil.which(client.command[0]) is None and not Path(client.command[0]).is_file():
        return f"{client.command[0]} not found"
    return None


def report_failure(run: Run, server: Server, error: BaseException) -> None:
    print(f"    {error}")
    if not isinstance(error, ScenarioFailed):
        print("".join(traceback.format_exception(error)).rstrip())
    print(f"    --- worker log {run.log.path} (last lines)")
    print(indent(run.log.tail(30)))
    for worker in run.workers:
        print(f"    --- output of {worker.name} (pid {worker.pid}, exit {worker.process.poll()})")
        print(indent(worker.output_tail()))
    print(f"    --- server log {server.log_path} (last lines)")
    print(indent("\n".join(server.log_path.read_text(errors="replace").splitlines()[-15:])))


def indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines()) or "      (empty)"


def run_scenario(
    client: Client, name: str, api: Api, worker_token: str, server: Server, workdir: Path
) -> bool:
    directory = workdir / client.name / name
    directory.mkdir(parents=True)
    run = Run(client, name, api, worker_token, directory)
    began = time.monotonic()
    try:
        summary = SCENARIOS[name](run)
    except BaseException as error:  # noqa: BLE001 - every failure is reported, then the next runs
        print(f"FAIL {client.name:<10} {name:<16} {time.monotonic() - began:6.1f} s")
        report_failure(run, server, error)
        if isinstance(error, KeyboardInterrupt):
            raise
        return False
    finally:
        run.end()
    elapsed = time.monotonic() - began
    if elapsed > SCENARIO_BOUND_SECONDS:
        print(
            f"FAIL {client.name:<10} {name:<16} {elapsed:6.1f} s: over its {SCENARIO_BOUND_SECONDS:.0f} s bound"
        )
        return False
    print(f"ok   {client.name:<10} {name:<16} {elapsed:6.1f} s  {summary}")
    return True


# A database connection handed back to the pool inside a transaction: later statements on it
# run in that transaction, hold its locks and may be rolled back with it.
LEAKED_TRANSACTION = "there is already a transaction in progress"


def warn_about_server(server: Server) -> None:
    """Says what the server logged that no scenario checks but that no run should show."""
    text = server.log_path.read_text(errors="replace")
    leaked = text.count(LEAKED_TRANSACTION)
    if leaked:
        print(
            f"conformance: warning: the server logged {LEAKED_TRANSACTION!r} {leaked} time(s) "
            f"(a database connection reused inside an unfinished transaction; see {server.log_path})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--client",
        action="append",
        choices=["python", "typescript"],
        help="repeatable; default both",
    )
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default all"
    )
    parser.add_argument(
        "--workdir", default=str(ROOT / "target/conformance/runs"), help="where the logs are kept"
    )
    args = parser.parse_args()

    admin_url = os.environ.get("SEEDCORE_TEST_DATABASE_URL")
    if not admin_url:
        sys.exit(
            "conformance: set SEEDCORE_TEST_DATABASE_URL to an admin URL, e.g. postgres://postgres@127.0.0.1:5432/postgres"
        )
    binary = os.environ.get("SEEDCORE_BIN") or str(ROOT / "target/debug/seedcore")
    if not os.access(binary, os.X_OK):
        sys.exit(f"conformance: no seedcore binary at {binary} (set SEEDCORE_BIN or cargo build)")
    python = os.environ.get("CONFORMANCE_PYTHON") or str(
        ROOT / "target/conformance/venv/bin/python"
    )
    chosen = clients(args.client or ["python", "typescript"], python)
    scenarios = args.scenario or list(SCENARIOS)

    workdir = Path(args.workdir) / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True)
    began = time.monotonic()
    failures = 0
    try:
        with Server(binary, admin_url, workdir) as server:
            print(
                f"conformance: seedcore at {server.url}, database {server.database}, logs in {workdir}"
            )
            # The suite acts as an operator with the admin token; workers get a worker token.
            api = Api(server.url, server.token)
            worker_token = api.worker_token("conformance-workers")
            for client in chosen:
                why = missing(client)
                if why:
                    print(f"FAIL {client.name:<10} (not runnable) {why}")
                    failures += len(scenarios)
                    continue
                for name in scenarios:
                    failures += not run_scenario(client, name, api, worker_token, server, workdir)
            warn_about_server(server)
    except (SetupError, ApiError) as err:
        print(f"conformance: {err}")
        return 1
    total = len(chosen) * len(scenarios)
    print(
        f"conformance: {total - failures} of {total} passed in {time.monotonic() - began:.1f} s "
        f"({', '.join(c.name for c in chosen)})"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
