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
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from api import Api
from workers import Client, Log, ScenarioFailed, Worker, wait_for

FENCE_TASKS = 1000
LONG_SECONDS = 0.5
FENCE_CONCURRENCY = 8
HEARTBEAT_SECONDS = 1.0
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
    wanted = set(ids)
    long_tasks = {task_id for task_id, s in zip(ids, seconds) if s == LONG_SECONDS}
    victim, survivor = (
        run.start_worker(1, FENCE_CONCURRENCY),
        run.start_worker(2, FENCE_CONCURRENCY),
    )
    victim_id, survivor_id = run.registered(victim), run.registered(survivor)

    def completed_lines() -> list[dict[str, Any]]:
        return [
            entry
            for entry in run.log.lines()
            if entry["event"] == "completed" and entry.get("task") in wanted
        ]

    def time_to_kill() -> bool:
        lines = run.log.lines()
        done = {entry["task"] for entry in lines if entry["event"] == "completed"}
        if len(done & wanted) < FENCE_TASKS // 4:
            return False
        # A long task the victim started just now is still running when the kill lands.
        recent = time.time() - LONG_SECONDS / 2
        return any(
            entry["event"] == "started"
            and entry["worker"] == victim.name
            and entry.get("task") in long_tasks
            and entry["task"] not in done
            and entry.get("ts", 0) > recent
            for entry in lines
        )

    wait_for(
        f"{FENCE_TASKS // 4} completions and {victim.name} running a long task",
        time_to_kill,
        60.0,
        [victim, survivor],
    )
    victim.signal(signal.SIGKILL)
    victim.wait_exit(10)
    killed_at = len(completed_lines())

    def all_done() -> bool:
        missing = wanted - {entry["task"] for entry in completed_lines()}
        # A completion the server took just before the kill may never have reached the log.
        return len(missing) <= 4 * FENCE_CONCURRENCY and all(
            run.api.task(t)["status"] == "completed" for t in missing
        )

    wait_for("every task to be completed", all_done, 90.0, [survivor], every=0.2)
    stop_gracefully(survivor)

    lines = run.log.lines()
    ids_by_name = {victim.name: victim_id, survivor.name: survivor_id}
    completions = Counter(
        entry["task"]
        for entry in lines
        if entry["event"] == "completed" and entry.get("task") in wanted
    )
    twice = [t for t, n in completions.items() if n > 1]
    expect(not twice, f"{len(twice)} tasks logged `completed` more than once, e.g. {twice[:3]}")
    held_by_victim = {
        entry["task"]
        for entry in lines
        if entry["event"] == "started" and entry["worker"] == victim.name
    }
    held_by_victim -= {
        entry["task"]
        for entry in lines
        if entry["event"] == "completed" and entry["worker"] == victim.name
    }

    trails = audit_trails(run.api, ids)
    rescued: list[str] = []
    unlogged = 0
    for task_id in ids:
        events = trails[task_id]
        done = [e for e in events if e["kind"] == "completed"]
        expect(
            len(done) == 1,
            f"task {task_id} has {len(done)} completions in its trail: {trail(events)}",
        )
        expect(
            events[-1]["to_status"] == "completed", f"task {task_id} ends {events[-1]['to_status']}"
        )
        line = [
            entry
            for entry in lines
            if entry["event"] == "completed" and entry.get("task") == task_id
        ]
        finisher = done[0].get("actor")
        if line:
            expect(
                finisher == f"worker:{ids_by_name.get(line[0]['worker'])}",
                f"task {task_id}: {line[0]['worker']} logged its completion, the trail says {finisher}",
            )
            expect(
                line[0].get("attempt") == done[0]["attempt"],
                f"task {task_id}: completed logged as attempt {line[0].get('attempt')}, "
                f"stored as {done[0]['attempt']}",
            )
        else:
            expect(
                finisher == f"worker:{victim_id}",
                f"task {task_id} has no `completed` line, yet was completed by {finisher}",
            )
            unlogged += 1
        if any(e["kind"] == "rescued" and e.get("worker_id") == victim_id for e in events):
            rescued.append(task_id)
            expect(
                done[0]["attempt"] > 1,
                f"rescued task {task_id} completed as attempt {done[0]['attempt']}",
            )
            expect(
                finisher == f"worker:{survivor_id}",
                f"rescued task {task_id} completed by {finisher}",
            )
        else:
            expect(
                task_id not in held_by_victim or finisher == f"worker:{victim_id}",
                f"task {task_id} was running in the killed worker, yet its trail shows no rescue "
                f"naming it: {trail(events)}",
            )
    expect(bool(rescued), "the killed worker held no task when it was killed: no rescue to check")
    # A completion the server accepted while the answer was still on its way to the killed
    # worker is never logged; at most one per handler slot can be on its way.
    expect(
        unlogged <= FENCE_CONCURRENCY,
        f"{unlogged} completions by the killed worker are missing from its log "
        f"(at most the {FENCE_CONCURRENCY} in flight at the kill may be)",
    )
    return (
        f"{FENCE_TASKS} tasks completed once each; killed {victim.name} after {killed_at} "
        f"completions; {len(rescued)} of its tasks rescued and completed by {survivor.name}"
    )


def audit_trails(api: Api, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(ids, pool.map(api.events, ids)))


# --- 2. a lease lost ------------------------------------------------------------------------


def lease_lost(run: Run) -> str:
    """A worker frozen past its lease loses the task to another; once thawed it aborts the
    handler, and its late completion is refused."""
    first, second = run.start_worker(1, concurrency=1), run.start_worker(2, concurrency=1)
    ids_by_name = {w.name: run.registered(w) for w in (first, second)}
    task_id = run.api.create_task(run.queue, 8)
    started = wait_for(
        "a worker to start the task",
        lambda: one(
            [
                entry
                for entry in run.log.lines()
                if entry["event"] == "started" and entry.get("task") == task_id
            ]
        ),
        10.0,
        [first, second],
    )
    holder = first if started["worker"] == first.name else second
    rescuer = second if holder is first else first
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
    aborted = wait_for(
        f"{holder.name} to log `aborted` once thawed",
        lambda: one(holder.lines("aborted", task=task_id)),
        2 * HEARTBEAT_SECONDS + 3,
        [holder],
    )
    expect(
        aborted.get("reason") == "lease_lost",
        f"{holder.name} aborted with reason {aborted.get('reason')!r}, not 'lease_lost'",
    )
    late = wait_for(
        f"{holder.name} to log `late_completion`",
        lambda: one(holder.lines("late_completion", task=task_id)),
        5.0,
        [holder],
    )
    expect(late.get("status") == 409, f"the late completion got {late.get('status')}, not 409")

    def rescuer_done() -> dict[str, Any] | None:
        gave_up = one(rescuer.lines("aborted", task=task_id))
        if gave_up:
            late = one(rescuer.lines("late_completion", task=task_id)) or {}
            raise ScenarioFailed(
                f"{rescuer.name} aborted the task it rescued (reason {gave_up.get('reason')!r}, "
                f"{gave_up['ts'] - rescued['ts']:.3f} s after starting it; its late completion "
                f"got {late.get('status')}), though its lease was current"
            )
        return one(rescuer.lines("completed", task=task_id))

    wait_for(f"{rescuer.name} to complete the task", rescuer_done, 15.0, [rescuer])
    expect(
        not holder.lines("completed", task=task_id),
        f"{holder.name} logged `completed` for the task it lost",
    )

    task = run.api.task(task_id)
    expect(task["status"] == "completed", f"the task ended {task['status']}")
    expect(
        task["worker_id"] == ids_by_name[rescuer.name],
        f"the task was completed by {task['worker_id']}",
    )
    expect(
        task.get("result", {}).get("result") == {"worker": rescuer.name},
        f"the stored result is {task.get('result')}",
    )
    events = run.api.events(task_id)
    rescues = [e for e in events if e["kind"] == "rescued"]
    expect(
        len(rescues) == 1 and rescues[0].get("worker_id") == ids_by_name[holder.name],
        f"the trail should show one rescue from {holder.name}: {trail(events)}",
    )
    expect(
        kinds(events).count("completed") == 1,
        f"the trail shows more than one completion: {trail(events)}",
    )
    for worker in (holder, rescuer):
        stop_gracefully(worker)
    return f"{holder.name} frozen {frozen_for:.1f} s, lost the task to {rescuer.name}; late completion refused 409"


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
    aborted = wait_for(
        "`aborted` after the cancel",
        lambda: one(worker.lines("aborted", task=task_id)),
        CANCEL_BOUND_SECONDS + 5,
        [worker],
    )
    delay = aborted["ts"] - cancelled_at
    expect(
        aborted.get("reason") == "cancelled",
        f"aborted with reason {aborted.get('reason')!r}, not 'cancelled'",
    )
    expect(
        delay <= CANCEL_BOUND_SECONDS,
        f"the handler was aborted {delay:.2f} s after the cancel; one heartbeat is {HEARTBEAT_SECONDS:.0f} s",
    )
    late = wait_for(
        "`late_completion`",
        lambda: one(worker.lines("late_completion", task=task_id)),
        5.0,
        [worker],
    )
    expect(late.get("status") == 409, f"the late completion got {late.get('status')}, not 409")
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
