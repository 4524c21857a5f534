"""A pull worker: claims tasks in batches by demand and runs them on a pool of threads.

Threads and what each owns:
- the claimer long-polls `claim` for as many tasks as there are free slots, while the server's
  orders are `running`;
- `concurrency` runners each run one handler at a time; a failure they report themselves, a
  result they hand to the completer and take the next task at once;
- the completer sends the results that accumulated as one batch completion (up to 100; it
  sends as soon as there is one, and more gather while a batch is in flight); against a server
  without the batch endpoint it falls back to one completion per task;
- the heartbeater renews every held lease and the worker's own heartbeat each
  `heartbeat_interval_seconds`, and turns `cancel_requested` or 409 into an abort; it runs on
  its own so that a busy handler never starves it;
- the supervisor registers, aborts a task whose lease would run out before a heartbeat renewed
  it (so a task never runs in two places), and runs the graceful stop.

Invariants:
- the Worker never completes, fails or releases an aborted task except to release it on
  shutdown; a handler's result that arrives after the abort is dropped (event `dropped`);
- a task's `reason` is set, and its `aborted` event emitted, before its handler can see the
  flag; on shutdown its lease is released before that too, so a late completion is refused;
- a task stays held (heartbeated and fenced) until the server took its outcome; it is fenced
  right before each send, and `completed` is emitted only once the server answered so for it;
- a stop sends the pending completions before it aborts or releases anything;
- no loop ends on a network error: each backs off (0.1 s doubling to 5 s, with jitter).
"""

from __future__ import annotations

import queue
import signal
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

from .backoff import Backoff
from .client import Client, Registration
from .errors import LeaseLost, NotFound, SeedcoreError
from .task import Aborted, PermanentError, Task

Handler = Callable[[Task], Any]
EventHook = Callable[[Dict[str, Any]], None]
H = TypeVar("H", bound=Handler)

#: Most tasks one claim asks for (the server's bound).
MAX_CLAIM = 100
#: How long an idle claim waits on the server for a task, in milliseconds.
CLAIM_WAIT_MS = 20_000
#: How long a claim waits for more free slots while tasks run (see `_await_demand`).
BATCH_WAIT_SECONDS = 0.005
#: How long a stop waits, after aborting what is left, for those handlers to return.
ABORT_WAIT_SECONDS = 5.0
#: How many times a stop tries to release a task over network errors.
RELEASE_TRIES = 3
#: How often the supervisor checks each lease against its deadline.
FENCE_TICK_SECONDS = 0.05
#: Most completions one batch carries (the server's bound).
MAX_BATCH = 100


class Worker:
    """Runs handlers for the task types registered with `handler` or `register`.

    `queues` and `types` choose what it claims (types default to the registered handlers);
    `queue_concurrency` caps some queues (`{"emails": 4}`: at most 4 of its tasks at once);
    `lease_seconds` is asked for on each claim (default: the server's); `grace_seconds` is how
    long a stop lets running handlers finish before aborting them and releasing their tasks.
    `on_event(event)` receives each lifecycle event as a dict with an `event` key:
    `registered`, `state`, `started`, `completed` (with `batch`: how many completions its
    request carried), `failed`, `aborted`, `dropped`, `released`, `error` and `stopped`.
    """

    def __init__(
        self,
        client: Client,
        name: str,
        queues: Optional[Sequence[str]] = None,
        types: Optional[Sequence[str]] = None,
        concurrency: int = 4,
        lease_seconds: Optional[float] = None,
        grace_seconds: float = 30.0,
        labels: Optional[Dict[str, Any]] = None,
        on_event: Optional[EventHook] = None,
        queue_concurrency: Optional[Mapping[str, int]] = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.name = name
        self.queues = list(queues) if queues is not None else None
        self.types = list(types) if types is not None else None
        self.concurrency = concurrency
        self.queue_concurrency = dict(queue_concurrency or {})
        self.lease_seconds = lease_seconds
        self.grace_seconds = grace_seconds
        self.labels = labels
        self.on_event = on_event
        self.registration: Optional[Registration] = None
        self.state: Optional[str] = None
        self._handlers: Dict[str, Handler] = {}
        #: Held tasks by id and lease token (one claim's tasks share a token): a task released and
        #: claimed again while its first handler still runs is two entries, each heartbeated and
        #: fenced on its own lease.
        self._held: Dict[Tuple[str, str], Task] = {}
        #: Handlers running now: the slots taken (`_held` also counts results being sent).
        self._busy = 0
        #: Results waiting for the completer, and how many it is sending now.
        self._results: List[Tuple[Task, Any]] = []
        self._sending = 0
        #: False once the server answered that it has no batch endpoint.
        self._batches = True
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._done = threading.Event()
        self._started = False
        self._inbox: "queue.SimpleQueue[Optional[Task]]" = queue.SimpleQueue()
        self._claim_connection: Any = None
        self._beats = client.with_timeout(min(client.timeout, 5.0))

    # Handlers

    def handler(self, task_type: str) -> Callable[[H], H]:
        """Decorator: `@worker.handler("email.send")` runs the function for that type."""

        def add(fn: H) -> H:
            self.register(task_type, fn)
            return fn

        return add

    def register(self, task_type: str, fn: Handler) -> None:
        """Runs `fn(task)` for tasks of this type; its return value is the task's result."""
        self._handlers[task_type] = fn

    # Lifecycle

    def run(self) -> None:
        """Runs until stopped (`stop`, SIGTERM or SIGINT, or the server's `terminate`).

        In the main thread it handles SIGTERM and SIGINT as a graceful stop, then puts the
        previous handlers back.
        """
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: self.stop())
        try:
            self.start()
            while not self._done.wait(0.2):
                pass
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def start(self) -> None:
        """Starts the worker's threads and returns; `join` waits for it to stop."""
        if self._started:
            raise RuntimeError("a Worker starts once")
        self._started = True
        if self.types is None:
            self.types = sorted(self._handlers)
        threading.Thread(target=self._supervise, name="seedcore-supervisor", daemon=True).start()

    def stop(self) -> None:
        """Asks for a graceful stop: no more claims; running handlers get `grace_seconds`."""
        self._stopping.set()
        conn = self._claim_connection
        if conn is not None:
            conn.interrupt()
        with self._changed:
            self._changed.notify_all()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Waits until the worker stopped; False if `timeout` passed first."""
        return self._done.wait(timeout)

    @property
    def held(self) -> List[Task]:
        """The tasks held now (running, or reporting their outcome)."""
        with self._changed:
            return list(self._held.values())

    # Supervisor: registration, fencing, graceful stop

    def _supervise(self) -> None:
        try:
            if self._register():
                self._serve()
            self._shut_down()
        finally:
            self._finished.set()
            self.client.close()
            self._emit({"event": "stopped"})
            self._done.set()

    def _register(self) -> bool:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                self.registration = self.client.register_worker(
                    self.name, self.queues, self.types, self.concurrency, self.labels
                )
            except SeedcoreError as err:
                self._error("register", err)
                self._stopping.wait(backoff.next())
                continue
            self._emit({"event": "registered", "worker_id": self.registration.id})
            return True
        return False

    def _serve(self) -> None:
        for i in range(self.concurrency):
            threading.Thread(target=self._runner, name=f"seedcore-runner-{i}", daemon=True).start()
        threading.Thread(target=self._heartbeater, name="seedcore-heartbeat", daemon=True).start()
        threading.Thread(target=self._completer, name="seedcore-completer", daemon=True).start()
        threading.Thread(target=self._claimer, name="seedcore-claimer", daemon=True).start()
        while not self._stopping.wait(FENCE_TICK_SECONDS):
            self._fence()

    def _fence(self) -> None:
        """Aborts each task whose lease would run out before any heartbeat renewed it."""
        for task in self.held:
            task.fence()

    def _shut_down(self) -> None:
        deadline = time.monotonic() + self.grace_seconds
        while self.held and time.monotonic() < deadline:
            self._fence()
            with self._changed:
                self._changed.wait(FENCE_TICK_SECONDS)
        self._await_results()
        for task in self.held:
            task.abort("shutdown")
        deadline = time.monotonic() + ABORT_WAIT_SECONDS
        while self.held and time.monotonic() < deadline:
            with self._changed:
                self._changed.wait(FENCE_TICK_SECONDS)
        for _ in range(self.concurrency):
            self._inbox.put(None)

    def _await_results(self) -> None:
        """Waits until the completer sent every result it was given (each ends: taken, or
        dropped once its lease is fenced), so that no finished task is released."""
        with self._changed:
            while self._results or self._sending:
                self._changed.wait(FENCE_TICK_SECONDS)
                for task, _ in self._results:
                    task.fence()

    def _on_abort(self, task: Task, reason: str) -> None:
        """Runs before the handler can see the flag: the event, then the release on shutdown."""
        self._emit(
            {"event": "aborted", "task": task.id, "attempt": task.attempt, "reason": reason}
        )
        if reason == "shutdown":
            self._release(task)

    def _release(self, task: Task) -> None:
        """Hands the task back, trying a few times over network errors: a stop should not
        leave a task to wait out its lease."""
        backoff = Backoff()
        for tries_left in range(RELEASE_TRIES - 1, -1, -1):
            try:
                self.client.release(task.id, task.lease_token)
            except SeedcoreError as err:
                self._error("release", err, task)
                if tries_left and (err.status is None or err.status == 503):
                    time.sleep(backoff.next())
                    continue
                return
            self._emit({"event": "released", "task": task.id})
            return

    # Claimer

    def _claimer(self) -> None:
        self._claim_connection = self.client._http.connection()
        try:
            self._claim_tasks()
        finally:
            self.client.close()

    def _claim_tasks(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            wanted = self._await_demand()
            if wanted == 0:
                continue
            started = time.monotonic()
            try:
                tasks = self._claim(wanted)
            except SeedcoreError as err:
                if self._stopping.is_set():
                    break
                self._error("claim", err)
                self._stopping.wait(backoff.next())
                continue
            backoff.reset()
            if self._stopping.is_set():
                for task in tasks:
                    self._release(task)
                break
            if not tasks and time.monotonic() - started < 0.5:
                # A quiet worker's claim answers at once: wait for the next heartbeat's orders.
                self._stopping.wait(self._interval() / 2)
            self._hold(tasks)

    def _await_demand(self) -> int:
        """Waits until the server's orders are `running` and slots are free; how many are.

        While tasks run, it waits up to `BATCH_WAIT_SECONDS` for a quarter of the slots to be
        free, so that one claim (a write on the server) serves several tasks.
        """
        batch = max(1, self.concurrency // 4)
        deadline: Optional[float] = None
        with self._changed:
            while not self._stopping.is_set():
                free = self.concurrency - self._busy
                if self.state not in (None, "running") or free == 0:
                    self._changed.wait(1.0)
                    continue
                if free >= batch or not self._busy:
                    return min(free, MAX_CLAIM)
                now = time.monotonic()
                deadline = deadline or now + BATCH_WAIT_SECONDS
                if now >= deadline:
                    return min(free, MAX_CLAIM)
                self._changed.wait(deadline - now)
        return 0

    def _claim(self, wanted: int) -> List[Task]:
        registration = self.registration
        assert registration is not None
        try:
            return self.client.claim(
                registration.id,
                wanted,
                CLAIM_WAIT_MS,
                self.queues,
                self.types,
                self._lease(),
                self.queue_concurrency,
            )
        except NotFound:
            self._reregister()
            return []

    def _hold(self, tasks: List[Task]) -> None:
        with self._changed:
            for task in tasks:
                task._on_abort = self._on_abort
                self._held[(task.id, task.lease_token)] = task
            self._busy += len(tasks)
        for task in tasks:
            self._inbox.put(task)

    def _reregister(self) -> None:
        """The server forgot this worker (a day without a call): register again."""
        try:
            self.registration = self.client.register_worker(
                self.name, self.queues, self.types, self.concurrency, self.labels
            )
        except SeedcoreError as err:
            self._error("register", err)
            return
        self._emit({"event": "registered", "worker_id": self.registration.id})

    # Runners

    def _runner(self) -> None:
        try:
            self._run_tasks()
        finally:
            self.client.close()

    def _run_tasks(self) -> None:
        while True:
            task = self._inbox.get()
            if task is None:
                return
            handed = False
            try:
                handed = self._execute(task)
            except Exception as err:  # noqa: BLE001 - a runner outlives any one task
                self._error("run", err, task)
            finally:
                with self._changed:
                    self._busy -= 1
                    if not handed:
                        self._held.pop((task.id, task.lease_token), None)
                    self._changed.notify_all()

    def _execute(self, task: Task) -> bool:
        """Runs the task's handler and reports a failure; True when the result went to the
        completer (which then owns the task until the server took it)."""
        if self.on_event is not None:
            self._emit({"event": "started", "task": task.id, "attempt": task.attempt})
        handler = self._handlers.get(task.type)
        if handler is None:
            self._fail(task, "UnsupportedTaskType", f"No handler for type '{task.type}'", "", False)
            return False
        try:
            result = handler(task)
        except Aborted as err:
            if task.reason is None:
                self._fail(task, "Aborted", str(err), traceback.format_exc(), True)
            return False
        except Exception as err:  # noqa: BLE001 - a handler's error is the task's failure
            if task.reason is not None:
                self._dropped(task)
                return False
            retryable = not isinstance(err, PermanentError)
            self._fail(task, type(err).__name__, str(err), traceback.format_exc(), retryable)
            return False
        if not self._batches:
            self._complete(task, result)
            return False
        with self._changed:
            self._results.append((task, result))
            self._changed.notify_all()
        return True

    def _complete(self, task: Task, result: Any) -> None:
        try:
            ended = self._report(task, lambda: self.client.complete(task.id, task.lease_token, result))
        except (TypeError, ValueError) as err:
            self._fail(task, type(err).__name__, f"the result is not JSON: {err}", "", False)
            return
        except SeedcoreError as err:
            self._fail(task, type(err).__name__, f"the result was refused: {err}", "", False)
            return
        if ended:
            self._completed(task, 1)

    def _completed(self, task: Task, batch: int) -> None:
        self._emit({"event": "completed", "task": task.id, "attempt": task.attempt, "batch": batch})

    def _fail(self, task: Task, kind: str, message: str, stack: str, retryable: bool) -> None:
        def send() -> Any:
            return self.client.fail(task.id, task.lease_token, kind, message, stack, retryable)

        try:
            ended = self._report(task, send)
        except SeedcoreError as err:
            self._error("fail", err, task)
            return
        if ended:
            self._emit({"event": "failed", "task": task.id, "attempt": task.attempt})

    def _report(self, task: Task, send: Callable[[], Any]) -> bool:
        """Sends an outcome until the server takes it (True) or the lease is gone (False).

        A repeat with the same token answers the same, so a lost answer is safely retried;
        errors other than network errors, 503 and 409 are raised.
        """
        backoff = Backoff()
        while not task.fence():
            try:
                send()
                return True
            except LeaseLost:
                break
            except SeedcoreError as err:
                if err.status is not None and err.status != 503:
                    raise
                self._error("report", err, task)
                task.aborted.wait(backoff.next())
        self._dropped(task)
        return False

    def _dropped(self, task: Task) -> None:
        event = {"event": "dropped", "task": task.id, "attempt": task.attempt}
        self._emit({**event, "reason": task.reason or "lease_lost"})

    # Completer

    def _completer(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                try:
                    self._send_batch(batch)
                except Exception as err:  # noqa: BLE001 - the completer outlives any one batch
                    self._error("complete", err)
                finally:
                    with self._changed:
                        for task, _ in batch:
                            self._held.pop((task.id, task.lease_token), None)
                        self._sending = 0
                        self._changed.notify_all()
        finally:
            self.client.close()

    def _next_batch(self) -> Optional[List[Tuple[Task, Any]]]:
        """The results waiting (up to `MAX_BATCH`), as soon as there is one; None once the
        worker finished and nothing waits."""
        with self._changed:
            while not self._results:
                if self._finished.is_set():
                    return None
                self._changed.wait(1.0)
            batch = self._results[:MAX_BATCH]
            del self._results[:MAX_BATCH]
            self._sending = len(batch)
            return batch

    def _send_batch(self, batch: List[Tuple[Task, Any]]) -> None:
        """Sends the batch until the server took it; each task is fenced right before each try
        and a fenced one is dropped. Falls back to single completions when the server has no
        batch endpoint, or refused the batch as a whole (so each result gets its own verdict).
        """
        backoff = Backoff()
        while batch:
            live = [(task, result) for task, result in batch if not task.fence()]
            for task, _ in batch:
                if task.reason is not None:
                    self._dropped(task)
            batch = live
            if not batch:
                return
            try:
                items = self.client.complete_many(
                    {"task_id": task.id, "lease_token": task.lease_token, "result": result}
                    for task, result in batch
                )
            except (TypeError, ValueError):
                self._complete_each(batch)  # a result that is not JSON fails alone
                return
            except SeedcoreError as err:
                if err.status in (404, 405):
                    self._batches = False
                if err.status is not None and err.status != 503:
                    self._complete_each(batch)
                    return
                self._error("complete", err)
                self._finished.wait(backoff.next())
                continue
            self._settle(batch, items)
            return

    def _settle(self, batch: List[Tuple[Task, Any]], items: List[Dict[str, Any]]) -> None:
        # The answers come in the order sent; a task may be in the batch twice (two leases).
        for (task, _), item in zip(batch, items):
            if item.get("task_id") == task.id and item.get("outcome") == "completed":
                self._completed(task, len(batch))
            else:
                self._dropped(task)
        for task, _ in batch[len(items):]:
            self._dropped(task)

    def _complete_each(self, batch: List[Tuple[Task, Any]]) -> None:
        for task, result in batch:
            self._complete(task, result)

    # Heartbeater

    def _heartbeater(self) -> None:
        next_beat = time.monotonic()
        while not self._finished.wait(max(0.0, next_beat - time.monotonic())):
            started = time.monotonic()
            self._beat_worker()
            # A lease taken or renewed less than half an interval ago needs no renewal yet: the
            # next round still comes well before it runs out.
            fresh = started + self._lease() - self._interval() / 2
            for task in self.held:
                if task.reason is None and task.lease_deadline < fresh:
                    self._beat_task(task)
            next_beat = started + self._interval()
        self._beats.close()

    def _beat_worker(self) -> None:
        registration = self.registration
        assert registration is not None
        try:
            state = self._beats.worker_heartbeat(registration.id)
        except NotFound:
            self._reregister()
            return
        except SeedcoreError as err:
            self._error("worker_heartbeat", err)
            return
        if state != self.state:
            with self._changed:
                self.state = state
                self._changed.notify_all()
            self._emit({"event": "state", "state": state})
            if state == "terminate":
                self.stop()

    def _beat_task(self, task: Task) -> None:
        started = time.monotonic()
        try:
            answer = self._beats.heartbeat(task.id, task.lease_token, extend_seconds=self._lease())
        except LeaseLost:
            task.abort("lease_lost")
            return
        except SeedcoreError as err:
            self._error("heartbeat", err, task)
            return
        task.renewed(started, answer)

    def _interval(self) -> float:
        registration = self.registration
        return registration.heartbeat_interval_seconds if registration else 1.0

    def _lease(self) -> float:
        """The lease each claim and heartbeat asks for."""
        if self.lease_seconds:
            return self.lease_seconds
        registration = self.registration
        return registration.default_lease_seconds if registration else 30.0

    # Events

    def _error(self, where: str, err: BaseException, task: Optional[Task] = None) -> None:
        if self.on_event is None:
            return
        event: Dict[str, Any] = {"event": "error", "where": where, "error": repr(err)}
        if task is not None:
            event["task"] = task.id
        self._emit(event)

    def _emit(self, event: Dict[str, Any]) -> None:
        hook = self.on_event
        if hook is None:
            return
        try:
            hook(event)
        except Exception:  # noqa: BLE001 - a failing hook must not stop the worker
            pass

