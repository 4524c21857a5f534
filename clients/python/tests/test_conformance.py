"""`python -m seedcore.conformance` as the conformance suite runs it: its log lines, its
handling of a cancel, and its graceful stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any, Dict, List

from serving import SRC, Server, eventually

from seedcore import Client


class ConformanceWorker(unittest.TestCase):
    def test_it_logs_each_event_cancels_and_stops_gracefully_on_sigterm(self) -> None:
        server = Server()
        server.start()
        self.addCleanup(server.close)
        client = Client(server.url)
        self.addCleanup(client.close)
        folder = tempfile.TemporaryDirectory(prefix="seedcore-conformance-")
        self.addCleanup(folder.cleanup)
        log = Path(folder.name) / "events.jsonl"
        env = {
            **os.environ,
            "PYTHONPATH": str(SRC),
            "SEEDCORE_URL": server.url,
            "CONFORMANCE_NAME": "py-1",
            "CONFORMANCE_QUEUES": "conf",
            "CONFORMANCE_CONCURRENCY": "3",
            "CONFORMANCE_GRACE_SECONDS": "1",
            "CONFORMANCE_LOG": str(log),
        }
        process = subprocess.Popen([sys.executable, "-m", "seedcore.conformance"], env=env)
        self.addCleanup(process.kill)

        def lines() -> List[Dict[str, Any]]:
            text = log.read_text() if log.exists() else ""
            return [json.loads(line) for line in text.splitlines()]

        def logged(event: str, task: str) -> List[Dict[str, Any]]:
            return [e for e in lines() if e["event"] == event and e.get("task") == task]

        def create(seconds: float) -> str:
            task = client.create_task("conformance.work", {"seconds": seconds}, queue="conf")
            return str(task["id"])

        quick, cancelled, endless = create(0), create(60), create(60)
        eventually(lambda: bool(logged("completed", quick)), timeout=15)
        eventually(lambda: bool(logged("started", cancelled) and logged("started", endless)))
        client.cancel_task(cancelled)
        eventually(lambda: bool(logged("late_completion", cancelled)), timeout=5)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(15), 0)

        events = lines()
        self.assertEqual(events[0]["event"], "registered")
        self.assertTrue(events[0]["worker_id"].startswith("pull:"))
        self.assertIn({"event": "state", "state": "running"}, [_core(e) for e in events])
        self.assertEqual(client.get_task(quick)["result"]["result"], {"worker": "py-1"})
        self.assertEqual(logged("aborted", cancelled)[0]["reason"], "cancelled")
        self.assertEqual(logged("late_completion", cancelled)[0]["status"], 409)
        self.assertEqual(logged("aborted", endless)[0]["reason"], "shutdown")
        self.assertTrue(logged("released", endless))
        self.assertEqual(logged("late_completion", endless)[0]["status"], 409)
        self.assertEqual(logged("completed", endless) + logged("completed", cancelled), [])
        self.assertEqual(client.get_task(endless)["status"], "queued")
        self.assertEqual(events[-1]["event"], "stopped")
        for event in events:
            self.assertEqual((event["worker"], event["pid"]), ("py-1", process.pid))
            self.assertIsInstance(event["ts"], float)


def _core(event: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("worker", "pid", "ts")}


if __name__ == "__main__":
    unittest.main()
