"""The client's producer API and its error classes, against a real server."""

from __future__ import annotations

import subprocess
import unittest
import uuid

from serving import Server, binary

from seedcore import (
    Client,
    Forbidden,
    LeaseLost,
    NotFound,
    SeedcoreError,
    TransportError,
    Unauthorized,
    ValidationError,
    WaitTimeout,
    task_body,
)


class ProducingTasks(unittest.TestCase):
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

    def test_a_created_task_is_queued_with_every_field_given(self) -> None:
        task = self.client.create_task(
            "produce.fields",
            {"n": 1},
            queue="reports",
            priority=7,
            max_attempts=2,
            delay_seconds=60,
            description="monthly",
        )
        stored = self.client.get_task(task["id"])
        self.assertEqual(stored["status"], "queued")
        self.assertEqual(stored["params"], {"n": 1})
        self.assertEqual(
            (stored["queue"], stored["priority"], stored["max_attempts"]), ("reports", 7, 2)
        )
        self.assertEqual(stored["description"], "monthly")
        self.assertGreater(stored["run_at"], stored["created_at"])

    def test_a_task_left_created_waits_for_its_run(self) -> None:
        task = self.client.create_task("produce.later", run_immediately=False)
        self.assertEqual(self.client.get_task(task["id"])["status"], "created")

    def test_tasks_created_in_bulk_come_back_as_ids_in_order(self) -> None:
        ids = self.client.create_tasks([task_body("produce.bulk", {"i": i}) for i in range(5)])
        self.assertEqual([self.client.get_task(i)["params"]["i"] for i in ids], list(range(5)))

    def test_wait_returns_a_task_once_it_finished(self) -> None:
        task = self.client.create_task("produce.cancelled")
        self.client.cancel_task(task["id"])
        self.assertEqual(self.client.wait(task["id"], timeout=5)["status"], "cancelled")

    def test_wait_gives_up_on_a_task_nobody_runs(self) -> None:
        task = self.client.create_task("produce.nobody")
        with self.assertRaises(WaitTimeout):
            self.client.wait(task["id"], timeout=0.3)

    def test_an_unknown_task_is_not_found(self) -> None:
        with self.assertRaises(NotFound) as caught:
            self.client.get_task(str(uuid.uuid4()))
        self.assertEqual(caught.exception.status, 404)
        self.assertEqual(caught.exception.detail, "Task not found")

    def test_an_invalid_body_is_a_validation_error_naming_its_fields(self) -> None:
        with self.assertRaises(ValidationError) as caught:
            self.client.create_task("", priority=10**9)
        located = [e["loc"] for e in caught.exception.errors]
        self.assertIn(["body", "type"], located)
        self.assertIn(["body", "priority"], located)
        self.assertEqual(caught.exception.status, 422)

    def test_a_stale_lease_is_lease_lost_with_its_409(self) -> None:
        task = self.client.create_task("produce.stale", queue="stale")
        worker = self.client.register_worker("stale", queues=["stale"])
        (claimed,) = self.client.claim(worker.id, max=1, wait_ms=5000)
        self.assertEqual(claimed.id, task["id"])
        stale = str(uuid.uuid4())
        for call in (
            lambda: self.client.complete(claimed.id, stale, 1),
            lambda: self.client.heartbeat(claimed.id, stale),
            lambda: self.client.fail(claimed.id, stale, "E", "m"),
            lambda: self.client.release(claimed.id, stale),
        ):
            with self.assertRaises(LeaseLost) as caught:
                call()
            self.assertEqual((caught.exception.status, caught.exception.detail), (409, "lease lost"))
        self.client.complete(claimed.id, claimed.lease_token, {"ok": True})
        again = self.client.complete(claimed.id, claimed.lease_token, {"ok": True})
        self.assertEqual(again["status"], "completed")

    def test_a_claim_for_an_unknown_worker_is_not_found(self) -> None:
        with self.assertRaises(NotFound):
            self.client.claim("pull:nobody", max=1)

    def test_no_server_is_a_transport_error(self) -> None:
        with self.assertRaises(TransportError) as caught, Client("http://127.0.0.1:9") as client:
            client.get_task(str(uuid.uuid4()))
        self.assertIsNone(caught.exception.status)
        self.assertIsInstance(caught.exception, SeedcoreError)


class Authentication(unittest.TestCase):
    def test_a_missing_token_is_unauthorized_and_a_weaker_one_forbidden(self) -> None:
        admin = subprocess.run(
            [binary(), "token", "generate"], check=True, capture_output=True, text=True
        ).stdout.strip()
        server = Server({"SEEDCORE_AUTH": "auto", "SEEDCORE_BOOTSTRAP_TOKEN": admin})
        server.start()
        self.addCleanup(server.close)
        with self.assertRaises(Unauthorized) as caught, Client(server.url) as anonymous:
            anonymous.create_task("auth.none")
        self.assertEqual(caught.exception.status, 401)
        with self.assertRaises(Unauthorized), Client(server.url, token="sc_wrong") as wrong:
            wrong.create_task("auth.wrong")
        with Client(server.url, token=admin) as administrator:
            viewer = administrator._http.call(
                "POST", "/api/v1/tokens", {"name": "viewer", "role": "viewer"}
            )["token"]
            self.assertEqual(administrator.create_task("auth.admin")["type"], "auth.admin")
        with self.assertRaises(Forbidden) as refused, Client(server.url, token=viewer) as weak:
            weak.create_task("auth.viewer")
        self.assertEqual(refused.exception.status, 403)


if __name__ == "__main__":
    unittest.main()
