"""The five behaviours every client's Worker must show, each checked against the server's own
records (task states and audit trails) as well as the workers' logs.

Each scenario gets a queue of its own, so workers of one scenario never see another's tasks,
and a time bound for every wait, so a misbehaving worker fails the scenario instead of hanging
the suite.
"""

from __future__ import annotations

import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from api import Api
from server import LEASE_SECONDS
from workers import Client, Log, ScenarioFailed, Worker, wait_for

FENCE_TASKS = 1000
LONG_SECONDS = 0.5
FENCE_CONCURRENCY = 8
# Registration answers with a third of the lease.
HEARTBEAT_SECONDS = LEASE_SECONDS / 3
# A cancel is seen at the next task heartbeat; this is one interval plus a little slack.
CANCEL_BOUND_SECONDS = 1.5


class Run:
    """What one scenario of one client works with: the server, a log, its workers."""

    def __init__(
        self, client: Client, scenario: str, api: Api, worker_token: str, workdir: Path
    ) -> None:
        self.client = client
        self.api = api
        self.worker_token = worker_token
        self.queue = f"conformance-{client.name}-{scenario}"
        self.prefix = f"{client.name}-{scenario}"
        self.workdir = workdir
        self.log = Log(workdir / "workers.jsonl")
        self.workers: list[Worker] = []

    def start_worker(self, number: int, concurrency: int = 4, grace: float | None = None) -> Worker:
        env = dict(
            os.environ,
            SEEDCORE_URL=self.api.base_url,
            CONFORMANCE_NAME=f"{self.prefix}-{number}",
            CONFORMANCE_QUEUES=self.queue,
            CONFORMANCE_CONCURRENCY=str(concurrency),
            CONFORMANCE_LOG=str(self.log.path),
        )
        env.pop("CONFORMANCE_LEASE_SECONDS", None)
        env.pop("CONFORMANCE_GRACE_SECONDS", None)
        env["SEEDCORE_TOKEN"] = self.worker_token
        if grace is not None:
            env["CONFORMANCE_GRACE_SECONDS"] = str(grace)
        worker = Worker(self.client, env["CONFORMANCE_NAME"], self.log, self.workdir, env)
        self.workers.append(worker)
        return worker

    def registered(self, worker: Worker, timeout: float = 20.0) -> str:
        """Waits for the worker's registration and returns its id."""
        return wait_for(f"{worker.name} to log `registered`", worker.worker_id, timeout, [worker])

    def end(self) -> None:
        for worker in self.workers:
            worker.end()


def one(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    return lines[0] if lines else None


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in events]


def trail(events: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{e['kind']} by {e.get('actor')} (worker {e.get('worker_id')})" for e in events
    )


def stop_gracefully(worker: Worker, timeout: float = 10.0) -> None:
    """SIGTERM and wait: the worker must leave with 0."""
    worker.signal(signal.SIGTERM)
    code = worker.wait_exit(timeout)
    expect(code is not None, f"{worker.name} still running {timeout:.0f} s after SIGTERM")
    expect(code == 0, f"{worker.name} exited with {code} after SIGTERM, not 0")


# --- 1. the fence ---------------------------------------------------------------------------


def fence(run: Run) -> str:
    """A thousand tasks, two workers, one SIGKILLed mid-run: every task completes exactly once,
    and the killed worker's tasks are rescued and run again elsewhere."""
    # Mostly short tasks; every twentieth lasts long enough for the kill to be sure to find
    # the worker holding one.
    rng = random.Random(7)
    seconds = [
        LONG_SECONDS if n % 20 == 0 else round(rng.uniform(0.002, 0.02), 4)
        for n in range(FENCE_TASKS)
    ]
    ids = run.api.create_tasks(run.queue, seconds)
    long_tasks = {task_id for task_id, s in zip(ids, seconds) if s == LONG_SECONDS}
    victim = run.start_worker(1, FENCE_CONCURRENCY)
    survivor = run.start_worker(2, FENCE_CONCURRENCY)
    worker_ids = {w.name: run.registered(w) for w in (victim, survivor)}

    killed_at = kill_mid_run(run, victim, survivor, set(ids), long_tasks)
    wait_drained(run, survivor, set(ids))
    stop_gracefully(survivor)

    check = FenceCheck(run.log.lines(), worker_ids, victim.name, survivor.name)
    for task_id, events in audit_trails(run.api, ids).items():
        check.task(task_id, events)
    check.overall()
    return (
        f"{FENCE_TASKS} tasks completed once each; killed {victim.name} after {killed_at} "
        f"completions; {len(check.rescued)} of its tasks rescued and completed by {survivor.name}"
    )


def completed(lines: list[dict[str, Any]], tasks: set[str]) -> list[dict[str, Any]]:
    return [e for e in lines if e["event"] == "completed" and e.get("task") in tasks]


def kill_mid_run(
    run: Run, victim: Worker, survivor: Worker, tasks: set[str], long_tasks: set[str]
) -> int:
    """SIGKILLs the victim once a quarter of the tasks are completed and it has just started a
    long one (so it surely holds a task); returns how many were completed by then."""

    def time_to_kill() -> bool:
        lines = run.log.lines()
        done = {e["task"] for e in completed(lines, tasks)}
        if len(done) < FENCE_TASKS // 4:
            return False
        recent = time.time() - LONG_SECONDS / 2
        return any(
            e["event"] == "started"
            and e["worker"] == victim.name
            and e.get("task") in long_tasks
            and e["task"] not in done
            and e.get("ts", 0) > recent
            for e in lines
        )

    wait_for(
        f"{FENCE_TASKS // 4} completions and {victim.name} running a long task",
        time_to_kill,
        60.0,
        [victim, survivor],
    )
    victim.signal(signal.SIGKILL)
    victim.wait_exit(10)
    return len(completed(run.log.lines(), tasks))


def wait_drained(run: Run, survivor: Worker, tasks: set[str]) -> None:
    """Waits until the server has every task completed."""

    def all_done() -> bool:
        missing = tasks - {e["task"] for e in completed(run.log.lines(), tasks)}
        # A completion the server took just before the kill may never have reached the log.
        return len(missing) <= 4 * FENCE_CONCURRENCY and all(
            run.api.task(t)["status"] == "completed" for t in missing
        )

    wait_for("every task to be completed", all_done, 90.0, [survivor], every=0.2)


class FenceCheck:
    """Each task's audit trail against the workers' lines, after the fence scenario."""

    def __init__(
        self, lines: list[dict[str, Any]], worker_ids: dict[str, str], victim: str, survivor: str
    ) -> None:
        self.lines_by_task: dict[str, list[dict[str, Any]]] = {}
        for entry in lines:
            if entry["event"] == "completed":
                self.lines_by_task.setdefault(entry.get("task", ""), []).append(entry)
        self.actors = {name: f"worker:{wid}" for name, wid in worker_ids.items()}
        self.victim_id = worker_ids[victim]
        self.victim, self.survivor = self.actors[victim], self.actors[survivor]
        started = {e["task"] for e in lines if e["event"] == "started" and e["worker"] == victim}
        finished = {e["task"] for e in lines if e["event"] == "completed" and e["worker"] == victim}
        self.held_by_victim = started - finished
        self.rescued: list[str] = []
        self.unlogged = 0

    def task(self, task_id: str, events: list[dict[str, Any]]) -> None:
        done = [e for e in events if e["kind"] == "completed"]
        expect(len(done) == 1, f"task {task_id}: {len(done)} completions in {trail(events)}")
        expect(events[-1]["to_status"] == "completed", f"task {task_id}: {trail(events)}")
        finisher, attempt = done[0].get("actor"), done[0]["attempt"]
        logged = self.lines_by_task.get(task_id, [])
        expect(len(logged) <= 1, f"task {task_id} was logged `completed` {len(logged)} times")
        if logged:
            expect(
                finisher == self.actors.get(logged[0]["worker"]),
                f"task {task_id}: {logged[0]['worker']} logged its completion, the trail says "
                f"{finisher}",
            )
            expect(
                logged[0].get("attempt") == attempt,
                f"task {task_id}: logged as attempt {logged[0].get('attempt')}, stored as {attempt}",
            )
        else:
            # Only the killed worker can have had a completion accepted and not logged it.
            expect(finisher == self.victim, f"task {task_id}: not logged, completed by {finisher}")
            self.unlogged += 1
        if any(e["kind"] == "rescued" and e.get("worker_id") == self.victim_id for e in events):
            self.rescued.append(task_id)
            expect(attempt > 1, f"rescued task {task_id} completed as attempt {attempt}")
            expect(finisher == self.survivor, f"rescued task {task_id} completed by {finisher}")
        else:
            expect(
                task_id not in self.held_by_victim or finisher == self.victim,
                f"task {task_id} was running in the killed worker, yet its trail shows no "
                f"rescue naming it: {trail(events)}",
            )

    def overall(self) -> None:
        expect(bool(self.rescued), "the killed worker held no task when killed: nothing rescued")
        # A completion the server accepted while its answer was on the way to the killed worker
        # is never logged; at most one per handler slot can be on the way.
        expect(
            self.unlogged <= FENCE_CONCURRENCY,
            f"{self.unlogged} completions by the killed worker are missing from its log (at "
            f"most the {FENCE_CONCURRENCY} in flight at the kill may be)",
        )


def audit_trails(api: Api, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(ids, pool.map(api.events, ids)))


# --- 2. a lease lost ------------------------------------------------------------------------


def lease_lost(run: Run) -> str:
    """A worker frozen past its lease loses the task to another; once thawed it aborts the
    handler, and its late completion is refused."""
    first, second = run.start_worker(1, concurrency=1), run.start_worker(2, concurrency=1)
    worker_ids = {w.name: run.registered(w) for w in (first, second)}
    task_id = run.api.create_task(run.queue, 8)
    started = wait_for(
        "a worker to start the task",
        lambda: one(
            [e for e in run.log.lines() if e["event"] == "started" and e.get("task") == task_id]
        ),
        10.0,
        [first, second],
    )
    holder, rescuer = (first, second) if started["worker"] == first.name else (second, first)
    holder.signal(signal.SIGSTOP)
    frozen_at = time.time()
    rescued = wait_for(
        f"{rescuer.name} to start the rescued task (attempt 2)",
        lambda: one(rescuer.lines("started", task=task_id, attempt=2)),
        15.0,
        [rescuer],
    )
    holder.signal(signal.SIGCONT)
    frozen_for = time.time() - frozen_at
    expect_aborted_and_refused(holder, task_id, "lease_lost", 2 * HEARTBEAT_SECONDS + 3)
    wait_for(
        f"{rescuer.name} to complete the task",
        lambda: rescuer_completion(rescuer, task_id, rescued["ts"]),
        15.0,
        [rescuer],
    )
    expect(
        not holder.lines("completed", task=task_id),
        f"{holder.name} logged `completed` for the task it lost",
    )
    check_taken_over(
        run.api, task_id, worker_ids[holder.name], worker_ids[rescuer.name], rescuer.name
    )
    for worker in (holder, rescuer):
        stop_gracefully(worker)
    return (
        f"{holder.name} frozen {frozen_for:.1f} s, lost the task to {rescuer.name}; "
        "late completion refused 409"
    )


def expect_aborted_and_refused(worker: Worker, task_id: str, reason: str, within: float) -> float:
    """Waits for the worker's `aborted` line (with this reason) and its refused late
    completion; returns when it aborted (its `ts`)."""
    aborted = wait_for(
        f"{worker.name} to log `aborted`",
        lambda: one(worker.lines("aborted", task=task_id)),
        within,
        [worker],
    )
    expect(
        aborted.get("reason") == reason,
        f"{worker.name} aborted with reason {aborted.get('reason')!r}, not {reason!r}",
    )
    late = wait_for(
        f"{worker.name} to log `late_completion`",
        lambda: one(worker.lines("late_completion", task=task_id)),
        5.0,
        [worker],
    )
    expect(late.get("status") == 409, f"the late completion got {late.get('status')}, not 409")
    return float(aborted["ts"])


def rescuer_completion(rescuer: Worker, task_id: str, started: float) -> dict[str, Any] | None:
    """The rescuer's `completed` line; fails at once if it gave the task up instead."""
    gave_up = one(rescuer.lines("aborted", task=task_id))
    if gave_up:
        late = one(rescuer.lines("late_completion", task=task_id)) or {}
        raise ScenarioFailed(
            f"{rescuer.name} aborted the task it rescued (reason {gave_up.get('reason')!r}, "
            f"{gave_up['ts'] - started:.3f} s after starting it; its late completion got "
            f"{late.get('status')}), though its lease was current"
        )
    return one(rescuer.lines("completed", task=task_id))


def check_taken_over(api: Api, task_id: str, loser: str, winner: str, winner_name: str) -> None:
    """The task was claimed by `loser`, rescued from it, then claimed and completed by `winner`."""
    task = api.task(task_id)
    expect(task["status"] == "completed", f"the task ended {task['status']}")
    expect(task["worker_id"] == winner, f"the task was completed by {task['worker_id']}")
    result = (task.get("result") or {}).get("result")
    expect(result == {"worker": winner_name}, f"the stored result is {task.get('result')}")
    events = api.events(task_id)
    expected = [
        ("created", None),
        ("claimed", f"worker:{loser}"),
        ("rescued", "system:lease-expired"),
        ("claimed", f"worker:{winner}"),
        ("completed", f"worker:{winner}"),
    ]
    got = [(e["kind"], e.get("actor") if e["kind"] != "created" else None) for e in events]
    expect(got == expected, f"the trail is {trail(events)}")
    expect(events[2].get("worker_id") == loser, f"the rescue names {events[2].get('worker_id')}")


# --- 3. a cancel ----------------------------------------------------------------------------


def cancel(run: Run) -> str:
    """A task cancelled while it runs: the handler is aborted within one heartbeat."""
    worker = run.start_worker(1)
    run.registered(worker)
    task_id = run.api.create_task(run.queue, 30)
    wait_for(
        "the task to start", lambda: one(worker.lines("started", task=task_id)), 10.0, [worker]
    )
    run.api.cancel(task_id)
    cancelled_at = time.time()
    aborted_at = expect_aborted_and_refused(worker, task_id, "cancelled", CANCEL_BOUND_SECONDS + 5)
    delay = aborted_at - cancelled_at
    expect(
        delay <= CANCEL_BOUND_SECONDS,
        f"the handler was aborted {delay:.2f} s after the cancel; a heartbeat is "
        f"{HEARTBEAT_SECONDS:.0f} s",
    )
    expect(not worker.lines("completed", task=task_id), "the cancelled task was logged `completed`")
    expect(not worker.lines("failed", task=task_id), "the cancelled task was logged `failed`")
    status = run.api.task(task_id)["status"]
    expect(status == "cancelled", f"the task ended {status}, not cancelled")
    stop_gracefully(worker)
    return f"aborted {delay:.2f} s after the cancel"


# --- 4. quiet, then terminate ---------------------------------------------------------------


def quiet_and_terminate(run: Run) -> str:
    """Quiet: the worker finishes what it holds and claims nothing more, yet stays. Terminate:
    it leaves within its grace period."""
    grace = 5.0
    worker = run.start_worker(1, concurrency=2, grace=grace)
    worker_id = run.registered(worker)
    held = run.api.create_task(run.queue, 2)
    wait_for("the task to start", lambda: one(worker.lines("started", task=held)), 10.0, [worker])
    run.api.quiet(worker_id)
    later = run.api.create_task(run.queue, 0)
    wait_for(
        "`state` quiet",
        lambda: one(worker.lines("state", state="quiet")),
        2 * HEARTBEAT_SECONDS + 2,
        [worker],
    )
    wait_for(
        "the held task to be completed",
        lambda: one(worker.lines("completed", task=held)),
        10.0,
        [worker],
    )
    time.sleep(3.0)
    expect(worker.alive(), f"the quiet worker exited with {worker.process.returncode}")
    expect(
        not worker.lines("started", task=later),
        "the quiet worker started a task created after the quiet",
    )
    status = run.api.task(later)["status"]
    expect(status == "queued", f"the task created after the quiet is {status}, not queued")
    expect(run.api.task(held)["status"] == "completed", "the held task is not completed")

    run.api.terminate(worker_id)
    terminated_at = time.time()
    bound = grace + 2 * HEARTBEAT_SECONDS + 2
    code = worker.wait_exit(bound)
    expect(code is not None, f"still running {bound:.0f} s after the terminate order")
    expect(code == 0, f"exited with {code} after the terminate order, not 0")
    expect(bool(worker.lines("state", state="terminate")), "no `state` terminate line")
    expect(bool(worker.lines("stopped")), "no `stopped` line")
    run.api.cancel(later)
    return f"quiet honoured; exited 0 {time.time() - terminated_at:.1f} s after terminate"


# --- 5. SIGTERM -----------------------------------------------------------------------------


def sigterm(run: Run) -> str:
    """SIGTERM with a task that outlasts the grace period: the handler is aborted, the task
    handed back with its attempt uncounted, and the worker exits 0."""
    grace = 1.0
    worker = run.start_worker(1, grace=grace)
    worker_id = run.registered(worker)
    task_id = run.api.create_task(run.queue, 30)
    wait_for(
        "the task to start", lambda: one(worker.lines("started", task=task_id)), 10.0, [worker]
    )
    worker.signal(signal.SIGTERM)
    signalled_at = time.time()
    bound = grace + 5
    code = worker.wait_exit(bound)
    expect(code is not None, f"still running {bound:.0f} s after SIGTERM (grace {grace:.0f} s)")
    expect(code == 0, f"exited with {code} after SIGTERM, not 0")
    aborted = one(worker.lines("aborted", task=task_id))
    if aborted is None:
        raise ScenarioFailed("no `aborted` line for the held task")
    expect(
        aborted.get("reason") == "shutdown",
        f"aborted with reason {aborted.get('reason')!r}, not 'shutdown'",
    )
    expect(bool(worker.lines("released", task=task_id)), "no `released` line for the held task")
    expect(bool(worker.lines("stopped")), "no `stopped` line")
    events = [entry["event"] for entry in worker.lines() if entry.get("task") in (task_id, None)]
    expect(events[-1] == "stopped", f"`stopped` is not the last line: {events}")
    for late in worker.lines("late_completion", task=task_id):
        expect(
            late.get("status") == 409, f"a late completion after release got {late.get('status')}"
        )
    expect(not worker.lines("completed", task=task_id), "the task was logged `completed`")
    task = run.api.task(task_id)
    expect(task["status"] == "queued", f"the released task is {task['status']}, not queued")
    expect(task["attempts"] == 0, f"the released task counts {task['attempts']} attempts, not 0")
    released = [e for e in run.api.events(task_id) if e["kind"] == "released"]
    expect(
        len(released) == 1 and released[0].get("actor") == f"worker:{worker_id}",
        "the trail does not show the release by the worker",
    )
    run.api.cancel(task_id)
    return f"exited 0 {time.time() - signalled_at:.1f} s after SIGTERM, task released"


SCENARIOS: dict[str, Callable[[Run], str]] = {
    "fence": fence,
    "lease_lost": lease_lost,
    "cancel": cancel,
    "quiet_terminate": quiet_and_terminate,
    "sigterm": sigterm,
}
