"""The remote executor against a real server whose workers send it tasks: results, progress
while a handler works, failures, cancellation and signed requests."""

from __future__ import annotations

import threading
import unittest
from typing import Any, Dict, Optional

from serving import Server, eventually, free_port

from seedcore import Aborted, Client, PermanentError
from seedcore.executor import Executor, ExecutorTask

SECRET = "0123456789abcdef0123456789abcdef"


class ExecutorTestCase(unittest.TestCase):
    """An executor on a free port, and a server whose workers send `report` tasks to it."""

    def start(self, executor: Executor, server_secret: Optional[str] = None) -> None:
        port = free_port()
        http = executor.bind("127.0.0.1", port)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        self.addCleanup(executor.shutdown)
        env = {
            "SEEDCORE_WORKER_CONCURRENCY": "2",
            "SEEDCORE_EXECUTORS": f"report=http://127.0.0.1:{port}/run",
        }
        if server_secret is not None:
            env["SEEDCORE_EXECUTOR_SECRETS"] = f"report={server_secret}"
        self.server = Server(env)
        self.server.start()
        self.addCleanup(self.server.close)
        self.client = Client(self.server.url, timeout=10)
        self.addCleanup(self.client.close)

    def finished(self, params: Optional[Dict[str, Any]] = None, **fields: Any) -> Dict[str, Any]:
        task = self.client.create_task("report", params or {}, **fields)
        return self.client.wait(task["id"], timeout=20)


class RunningTasks(ExecutorTestCase):
    def test_the_handlers_result_is_the_tasks_result(self) -> None:
        executor = Executor()
        seen = []

        @executor.handler("report")
        def report(task: ExecutorTask, progress: Any) -> Dict[str, Any]:
            seen.append((task.type, task.params, task.attempt))
            return {"rows": task.params["rows"] * 2}

        self.start(executor)
        done = self.finished({"rows": 21})
        self.assertEqual(done["status"], "completed", done)
        self.assertEqual(done["result"]["result"], {"rows": 42})
        self.assertEqual(seen, [("report", {"rows": 21}, 1)])

    def test_progress_shows_on_the_task_while_the_handler_works(self) -> None:
        executor = Executor()
        halfway = threading.Event()
        go_on = threading.Event()

        @executor.handler("report")
        def report(task: ExecutorTask, progress: Any) -> str:
            progress(0.5)
            halfway.set()
            go_on.wait(10)
            return "done"

        self.start(executor)
        task = self.client.create_task("report")
        self.assertTrue(halfway.wait(10))
        eventually(lambda: self.client.get_task(task["id"])["progress"] == 0.5)
        self.assertEqual(self.client.get_task(task["id"])["status"], "running")
        go_on.set()
        done = self.client.wait(task["id"], timeout=20)
        self.assertEqual(done["status"], "completed", done)
        self.assertEqual(done["result"]["result"], "done")

    def test_an_exception_fails_the_attempt_and_is_retried_unless_permanent(self) -> None:
        executor = Executor()

        @executor.handler("report")
        def report(task: ExecutorTask, progress: Any) -> None:
            if task.params["permanent"]:
                raise PermanentError("the input is unusable")
            raise RuntimeError(f"attempt {task.attempt} broke")

        self.start(executor)
        permanent = self.finished({"permanent": True}, max_attempts=3)
        self.assertEqual(permanent["status"], "failed")
        self.assertEqual(permanent["attempts"], 1)
        self.assertIn("PermanentError: the input is unusable", permanent["error"])
        retried = self.finished({"permanent": False}, max_attempts=2)
        self.assertEqual(retried["status"], "failed")
        self.assertEqual(retried["attempts"], 2)
        self.assertIn("RuntimeError: attempt 2 broke", retried["error"])

    def test_cancelling_the_task_aborts_the_handler_at_its_next_progress(self) -> None:
        executor = Executor()
        started = threading.Event()
        aborted = threading.Event()

        @executor.handler("report")
        def report(task: ExecutorTask, progress: Any) -> None:
            started.set()
            try:
                for _ in range(500):
                    progress(0.1)
                    threading.Event().wait(0.02)
            except Aborted:
                aborted.set()
                raise

        self.start(executor)
        task = self.client.create_task("report")
        self.assertTrue(started.wait(10))
        eventually(lambda: self.client.get_task(task["id"])["progress"] == 0.1)
        self.client.cancel_task(task["id"])
        self.assertTrue(aborted.wait(10), "the handler was told to stop")
        self.assertEqual(self.client.get_task(task["id"])["status"], "cancelled")

    def test_a_progress_outside_zero_to_one_is_the_handlers_error(self) -> None:
        executor = Executor()

        @executor.handler("report")
        def report(task: ExecutorTask, progress: Any) -> None:
            progress(2)

        self.start(executor)
        done = self.finished(max_attempts=1)
        self.assertEqual(done["status"], "failed")
        self.assertIn("ValueError: progress must be a number from 0 to 1, got 2", done["error"])


class SignedRequests(ExecutorTestCase):
    def test_the_documented_signature_checks_out(self) -> None:
        executor = Executor(secret=SECRET, max_skew_seconds=float("inf"))
        good = "v1=1d3a1a80c8ad0d56d3cc81d488b5779dbdd6367281fd813d1d9b8d7a5cd0204b"
        self.assertIsNone(executor.signature_problem("1700000000", good, b'{"id":"x"}'))
        self.assertEqual(
            executor.signature_problem("1700000000", good, b'{"id":"y"}'),
            "the signature does not match",
        )
        self.assertEqual(
            Executor(secret=SECRET).signature_problem("1700000000", good, b'{"id":"x"}'),
            "the timestamp is too far from this machine's clock",
        )

    def test_a_task_signed_with_the_executors_secret_runs(self) -> None:
        executor = Executor(secret=SECRET)
        executor.handler("report")(lambda task, progress: "signed")
        self.start(executor, server_secret=SECRET)
        done = self.finished()
        self.assertEqual(done["status"], "completed", done)
        self.assertEqual(done["result"]["result"], "signed")

    def test_a_request_signed_with_another_secret_is_refused_and_runs_nothing(self) -> None:
        executor = Executor(secret=SECRET)
        ran = []
        executor.handler("report")(lambda task, progress: ran.append(task.id))
        self.start(executor, server_secret="another-secret-of-at-least-32-chars!")
        done = self.finished(max_attempts=3)
        self.assertEqual(done["status"], "failed")
        self.assertEqual(done["attempts"], 1, "a 4xx is final")
        self.assertIn("401", done["error"])
        self.assertIn("the signature does not match", done["error"])
        self.assertEqual(ran, [])


if __name__ == "__main__":
    unittest.main()
