"""The Worker against a real server: outcomes, retries, aborts, graceful stops and leases."""

from __future__ import annotations

import threading
import time
import unittest
from typing import Any, Dict, List, Optional

from serving import LEASE_SECONDS, Events, Server, eventually

from seedcore import Client, PermanentError, Task, Worker


class WorkerTestCase(unittest.TestCase):
    """One server for the class; each test runs its own workers on a queue of its own."""

    server: Server
    client: Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server()
        cls.server.start()
        cls.client = Client(cls.server.url, timeout=10)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.server.close()

    def worker(self, queue: str, grace_seconds: float = 5.0, concurrency: int = 4) -> Worker:
        """A worker of this queue with its events in `self.events`, stopped after the test."""
        self.events = Events()
        worker = Worker(
            self.client,
            f"test-{queue}",
            queues=[queue],
            concurrency=concurrency,
            grace_seconds=grace_seconds,
            on_event=self.events,
        )
        self.addCleanup(stop, worker)
        return worker

    def create(self, queue: str, task_type: str, params: Optional[Dict[str, Any]] = None,
               max_attempts: int = 3) -> str:
        task = self.client.create_task(task_type, params, queue=queue, max_attempts=max_attempts)
        return str(task["id"])


class Outcomes(WorkerTestCase):
    def test_a_worker_completes_tasks_with_their_handlers_results(self) -> None:
        worker = self.worker("outcomes")

        @worker.handler("double")
        def double(task: Task) -> Dict[str, int]:
            return {"twice": task.params["n"] * 2}

        ids = [self.create("outcomes", "double", {"n": n}) for n in range(20)]
        worker.start()
        results = [self.client.wait(i, timeout=20) for i in ids]
        self.assertEqual([r["status"] for r in results], ["completed"] * 20)
        self.assertEqual([r["result"]["result"]["twice"] for r in results], [2 * n for n in range(20)])
        self.assertEqual(len(self.events.of("completed")), 20)
        self.assertEqual(self.events.wait_for("state")["state"], "running")

    def test_a_raised_exception_fails_the_task_with_its_type_message_and_stack(self) -> None:
        worker = self.worker("raising")

        def explode(task: Task) -> None:
            raise KeyError("customer")

        worker.register("explode", explode)
        task = self.create("raising", "explode", max_attempts=1)
        worker.start()
        failed = self.client.wait(task, timeout=10)
        self.assertEqual(failed["status"], "failed")
        self.assertTrue(failed["error"].startswith("KeyError: 'customer'\n"), failed["error"])
        self.assertIn("Traceback", failed["error"])
        self.assertIn("in explode", failed["error"])
        self.assertEqual(self.events.wait_for("failed", task)["attempt"], 1)

    def test_an_ordinary_exception_is_retried_and_a_permanent_error_is_not(self) -> None:
        worker = self.worker("retries")

        @worker.handler("flaky")
        def flaky(task: Task) -> str:
            if task.attempt == 1:
                raise ConnectionError("upstream down")
            return "fine"

        @worker.handler("doomed")
        def doomed(task: Task) -> None:
            raise PermanentError("bad input")

        flaky_id = self.create("retries", "flaky", max_attempts=3)
        doomed_id = self.create("retries", "doomed", max_attempts=3)
        worker.start()
        retried = self.client.wait(flaky_id, timeout=15)
        self.assertEqual((retried["status"], retried["attempts"]), ("completed", 2))
        failed = self.client.wait(doomed_id, timeout=15)
        self.assertEqual((failed["status"], failed["attempts"]), ("failed", 1))
        self.assertTrue(failed["error"].startswith("PermanentError: bad input"))


class QueueLimits(WorkerTestCase):
    def test_a_queue_limit_keeps_that_queue_to_its_count_while_others_use_the_slots(self) -> None:
        events = Events()
        worker = Worker(
            self.client,
            "test-limits",
            queues=["limited", "open"],
            concurrency=4,
            queue_concurrency={"limited": 1},
            on_event=events,
        )
        self.addCleanup(stop, worker)
        lock = threading.Lock()
        running = {"limited": 0, "open": 0}
        most = {"limited": 0, "open": 0}

        @worker.handler("slow")
        def slow(task: Task) -> None:
            queue = task.params["queue"]
            with lock:
                running[queue] += 1
                most[queue] = max(most[queue], running[queue])
            time.sleep(0.3)
            with lock:
                running[queue] -= 1

        ids = [self.create(q, "slow", {"queue": q}) for q in ["limited"] * 3 + ["open"] * 3]
        worker.start()
        results = [self.client.wait(i, timeout=20) for i in ids]
        self.assertEqual([r["status"] for r in results], ["completed"] * 6)
        self.assertEqual(most["limited"], 1)
        self.assertGreater(most["open"], 1)


class Batches(WorkerTestCase):
    def test_many_quick_tasks_complete_through_batches_of_several(self) -> None:
        worker = self.worker("batches", concurrency=16)
        worker.register("quick", lambda task: {"n": task.params["n"]})
        ids = self.client.create_tasks(
            [{"type": "quick", "queue": "batches", "params": {"n": n}} for n in range(300)]
        )
        worker.start()
        done = [self.client.wait(i, timeout=30) for i in ids]
        self.assertEqual([d["status"] for d in done], ["completed"] * 300)
        self.assertEqual([d["result"]["result"]["n"] for d in done], list(range(300)))
        completed = self.events.of("completed")
        self.assertEqual(sorted(e["task"] for e in completed), sorted(ids))
        self.assertGreater(max(e["batch"] for e in completed), 1)
        eventually(lambda: not worker.held)

    def test_a_lease_lost_inside_a_batch_drops_that_task_only(self) -> None:
        ids = self.client.create_tasks([{"type": "t", "queue": "lost"} for _ in range(3)])
        registered = self.client.register_worker("lost", ["lost"], ["t"])
        tasks = self.client.claim(registered.id, max=3, queues=["lost"])
        self.assertEqual(sorted(t.id for t in tasks), sorted(ids))
        stale = tasks[1]
        self.client.release(stale.id, stale.lease_token)
        answer = self.client.complete_many(
            [{"task_id": t.id, "lease_token": t.lease_token, "result": t.id} for t in tasks]
        )
        outcomes = [(item["task_id"], item["outcome"]) for item in answer]
        expected = [(t.id, "lease_lost" if t is stale else "completed") for t in tasks]
        self.assertEqual(outcomes, expected)
        self.assertEqual(self.client.get_task(stale.id)["status"], "queued")
        for task in (tasks[0], tasks[2]):
            stored = self.client.get_task(task.id)
            self.assertEqual((stored["status"], stored["result"]["result"]), ("completed", task.id))

    def test_the_worker_drops_a_result_whose_lease_was_lost_and_completes_the_rest(self) -> None:
        worker = self.worker("mixed", concurrency=8)
        gate = threading.Event()
        stolen: List[str] = []

        @worker.handler("gated")
        def gated(task: Task) -> str:
            gate.wait(10)
            return "kept"

        @worker.handler("stolen")
        def stolen_handler(task: Task) -> str:
            if not stolen:
                # Its lease is taken away while the others wait: its result is refused, the
                # others' are taken.
                self.client.release(task.id, task.lease_token)
                stolen.append(task.id)
            gate.wait(10)
            return f"attempt of token {task.lease_token}"

        kept = self.client.create_tasks([{"type": "gated", "queue": "mixed"} for _ in range(5)])
        lost = self.create("mixed", "stolen", max_attempts=1)
        worker.start()
        eventually(lambda: len(self.events.of("started")) >= 6)
        gate.set()
        for task in kept:
            self.assertEqual(self.client.wait(task, timeout=10)["status"], "completed")
        self.assertEqual(self.events.wait_for("dropped", lost)["reason"], "lease_lost")
        done = self.client.wait(lost, timeout=10)
        self.assertEqual(done["status"], "completed")
        self.assertEqual(len(self.events.of("completed", lost)), 1)


class Aborts(WorkerTestCase):
    def test_a_cancel_aborts_the_handler_within_a_heartbeat(self) -> None:
        worker = self.worker("cancels")
        seen: List[float] = []

        @worker.handler("long")
        def long(task: Task) -> None:
            task.aborted.wait(30)
            seen.append(time.monotonic())
            task.check()

        task = self.create("cancels", "long")
        worker.start()
        self.events.wait_for("started", task)
        cancelled_at = time.monotonic()
        self.client.cancel_task(task)
        aborted = self.events.wait_for("aborted", task, timeout=5)
        self.assertEqual(aborted["reason"], "cancelled")
        eventually(lambda: bool(seen))
        interval = LEASE_SECONDS / 3
        self.assertLess(seen[0] - cancelled_at, interval + 1.0)
        self.assertEqual(self.client.get_task(task)["status"], "cancelled")
        eventually(lambda: not worker.held)
        self.assertEqual(self.events.of("completed", task) + self.events.of("failed", task), [])

    def test_a_stop_lets_handlers_finish_then_aborts_and_releases_the_rest(self) -> None:
        worker = self.worker("stops", grace_seconds=1.0)
        late: List[int] = []

        @worker.handler("quick")
        def quick(task: Task) -> str:
            time.sleep(0.3)
            return "done"

        @worker.handler("endless")
        def endless(task: Task) -> None:
            while not task.aborted.wait(0.05):
                pass
            try:
                self.client.complete(task.id, task.lease_token, "late")
            except Exception as err:  # the release came first: refused
                late.append(getattr(err, "status", 0))

        quick_id = self.create("stops", "quick")
        endless_id = self.create("stops", "endless")
        worker.start()
        self.events.wait_for("started", quick_id)
        self.events.wait_for("started", endless_id)
        worker.stop()
        self.assertTrue(worker.join(10))
        self.assertEqual(self.client.get_task(quick_id)["status"], "completed")
        self.assertEqual(self.events.wait_for("aborted", endless_id)["reason"], "shutdown")
        self.events.wait_for("released", endless_id)
        released = self.client.get_task(endless_id)
        self.assertEqual((released["status"], released["attempts"]), ("queued", 0))
        eventually(lambda: late == [409])
        self.assertEqual(self.events.items[-1], {"event": "stopped"})

    def test_a_busy_handler_keeps_its_lease_past_three_lease_periods(self) -> None:
        worker = self.worker("busy")

        @worker.handler("grind")
        def grind(task: Task) -> int:
            end = time.monotonic() + 3 * LEASE_SECONDS + 0.5
            total = 0
            while time.monotonic() < end:
                total += sum(range(20_000))  # holds the GIL a while
                time.sleep(0.01)
            return total

        task = self.create("busy", "grind", max_attempts=1)
        worker.start()
        done = self.client.wait(task, timeout=30)
        self.assertEqual((done["status"], done["attempts"]), ("completed", 1))
        self.assertEqual(self.events.of("aborted"), [])


class Orders(WorkerTestCase):
    def test_a_quiet_worker_claims_nothing_and_a_terminated_one_stops(self) -> None:
        worker = self.worker("orders")
        worker.register("ordered", lambda task: "ran")
        worker.start()
        registered = self.events.wait_for("registered")["worker_id"]
        self.events.wait_for("state")
        self.client._http.call("POST", f"/api/v1/workers/{registered}/quiet")
        eventually(lambda: worker.state == "quiet", timeout=5)
        task = self.create("orders", "ordered")
        time.sleep(1.5)
        self.assertEqual(self.client.get_task(task)["status"], "queued")
        self.client._http.call("POST", f"/api/v1/workers/{registered}/terminate")
        self.assertTrue(worker.join(10))
        states = [e["state"] for e in self.events.of("state")]
        self.assertEqual(states, ["running", "quiet", "terminate"])
        self.assertEqual(self.client.get_task(task)["status"], "queued")


class NetworkErrors(unittest.TestCase):
    def test_a_worker_fences_itself_while_the_server_is_gone_and_resumes_after(self) -> None:
        server = Server()
        server.start()
        self.addCleanup(server.close)
        client = Client(server.url, timeout=2)
        self.addCleanup(client.close)
        events = Events()
        worker = Worker(client, "restarts", queues=["net"], on_event=events, grace_seconds=1)
        self.addCleanup(stop, worker)
        runs: List[int] = []

        @worker.handler("stubborn")
        def stubborn(task: Task) -> str:
            runs.append(task.attempt)
            if task.attempt == 1:
                time.sleep(LEASE_SECONDS + 1.0)  # ignores the abort: its result is dropped
            return f"attempt {task.attempt}"

        task = client.create_task("stubborn", queue="net", max_attempts=3)["id"]
        worker.start()
        events.wait_for("started", task)
        server.stop(kill=True)
        aborted = events.wait_for("aborted", task, timeout=LEASE_SECONDS + 1)
        self.assertEqual(aborted["reason"], "lease_lost")
        self.assertEqual(events.wait_for("dropped", task, timeout=5)["reason"], "lease_lost")
        self.assertTrue(events.of("error"), "network errors are reported")
        server.start()
        done = client.wait(task, timeout=20)
        self.assertEqual((done["status"], done["attempts"]), ("completed", 2))
        self.assertEqual(done["result"]["result"], "attempt 2")
        self.assertEqual(runs, [1, 2])
        self.assertEqual(len(events.of("completed", task)), 1)


def stop(worker: Worker) -> None:
    worker.stop()
    worker.join(15)


if __name__ == "__main__":
    unittest.main()
