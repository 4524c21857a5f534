//! The workers: claim tasks from the store, run them through the handler router, record how
//! each attempt ended.
//!
//! Rules this module keeps:
//! - a lane (normal or escalated path) claims, in one statement, as many tasks as it has free
//!   slots, plus a bounded number held for a slot while its handlers are quick (see [`lanes`]);
//!   it never holds a transaction while a handler runs;
//! - every running task has a lease, renewed by one heartbeat per process; a task whose lease
//!   could not be renewed (cancelled, rescued) has its handler stopped and its result dropped;
//! - a process that cannot reach its database fences itself: a task whose lease is no longer
//!   known to be held (see [`fence`]) has its handler stopped and its result dropped before the
//!   lease can expire in the store, so a task is never run by two processes at once; claims and
//!   renewals are bounded in time, so a silent network cut cannot hang them;
//! - an attempt ends exactly once: completed, retry (retryable error with attempts left),
//!   failed, or, when the process shuts down, released back to the queue uncounted;
//! - wake-ups are hints; each lane also polls, so a lost notification only delays. After a full
//!   batch a lane claims again as soon as it has free slots; after a shorter one (nothing else
//!   was ready) it waits for the next wake-up (kept if it came while claiming) or poll.

mod at_creation;
pub mod builtin;
mod completer;
pub mod drift;
mod fence;
pub mod handler;
mod lanes;
pub mod remote;
pub mod retry;
mod scheduler;

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, OnceLock, atomic::Ordering},
    time::{Duration, Instant},
};

use chrono::Utc;
use completer::Completion;
use futures::FutureExt;
use serde_json::json;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

pub use handler::{
    Handler, HandlerError, HandlerResult, HandlerRouter, Parent, Progress, ProgressError,
    TaskContext, handler_fn,
};
pub use retry::RetryPolicy;

use crate::{
    config::{EngineConfig, seconds},
    maintenance::Keeping,
    metrics::{self, AttemptOutcome},
    model::Worker,
    store::{Claim, ClaimedTask, DynStore, Lease, LocalStarter, Outcome, Signal},
    telemetry::traceparent::TraceParent,
    validate::limits,
};

/// The longest a lane waits to claim again after failed claims (see [`after_failures`]).
const MAX_CLAIM_RETRY: Duration = Duration::from_secs(5);

/// How the engine of one process behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineSettings {
    /// Tasks run at once on the normal path; 0 runs none there. Default 32.
    pub concurrency: usize,
    /// Tasks run at once on the escalated path; 0 runs none there. Default 4.
    pub escalated_concurrency: usize,
    /// Drift score at or above which a task takes the escalated path. Default 0.5.
    pub drift_threshold: f64,
    /// How long a claim's lease lasts; renewed every third of it. Default 30 s.
    pub lease: Duration,
    /// How often an idle lane polls for work when no wake-up arrives. Default 1 s.
    pub poll_interval: Duration,
    /// How long a normal-path attempt may run unless the task says. Default 300 s.
    pub task_timeout: Duration,
    /// How long an escalated attempt may run unless the task says. Default 900 s.
    pub escalated_timeout: Duration,
    /// The backoff between attempts. Default 1 s doubling up to 1 h.
    pub retry: RetryPolicy,
    /// How long running tasks get to finish on shutdown before they are released. Default 30 s.
    pub shutdown_grace: Duration,
    /// When set, a drift detector also escalates tasks below the threshold (see [`drift`]).
    pub cusum: Option<drift::CusumSettings>,
    /// The queues this process serves; None serves every queue.
    pub queues: Option<Vec<String>>,
    /// Queues with a concurrency limit in this process, each served by a lane of its own.
    pub queue_limits: Vec<(String, usize)>,
    /// Where housekeeping keeps finished tasks, and how long (see [`crate::maintenance`]).
    /// Default: five minutes in the hot table, then the history, forever.
    pub keeping: Keeping,
    /// Largest result an attempt may store, as compact JSON; a larger one fails the attempt
    /// (not retried) rather than being stored or cut. Default 1 MiB.
    pub max_result_bytes: usize,
    /// A ready task created through this process's store starts at once in a lane that waits
    /// for work, unless a ready task of its queue comes first (see [`at_creation`]). Default
    /// true.
    pub start_at_creation: bool,
}

/// The same defaults as the `seedcore` binary's (see `seedcore serve --help`).
impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            concurrency: 32,
            escalated_concurrency: 4,
            drift_threshold: 0.5,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            task_timeout: Duration::from_secs(300),
            escalated_timeout: Duration::from_secs(900),
            retry: RetryPolicy {
                base: Duration::from_secs(1),
                max: Duration::from_secs(3600),
            },
            shutdown_grace: Duration::from_secs(30),
            cusum: None,
            queues: None,
            queue_limits: Vec::new(),
            keeping: Keeping::default(),
            max_result_bytes: limits::DEFAULT_RESULT_BYTES,
            start_at_creation: true,
        }
    }
}

impl From<&EngineConfig> for EngineSettings {
    fn from(config: &EngineConfig) -> Self {
        EngineSettings {
            concurrency: config.worker_concurrency,
            escalated_concurrency: config.escalated_concurrency,
            drift_threshold: config.drift_threshold,
            lease: config.lease(),
            poll_interval: config.poll_interval(),
            task_timeout: seconds(config.task_timeout_seconds),
            escalated_timeout: seconds(config.escalated_timeout_seconds),
            retry: RetryPolicy {
                base: seconds(config.retry_base_seconds),
                max: seconds(config.retry_max_seconds),
            },
            shutdown_grace: config.shutdown_grace(),
            cusum: config.drift_cusum.then_some(drift::CusumSettings {
                slack: config.drift_cusum_slack,
                limit: config.drift_cusum_limit,
            }),
            // Parsed and checked by `config::parse_queues` and `parse_queue_limits`.
            queues: None,
            queue_limits: Vec::new(),
            keeping: config.keeping(),
            max_result_bytes: config.max_result_bytes,
            start_at_creation: config.start_at_creation,
        }
    }
}

/// Why a running handler was stopped before it finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    /// The lease was lost: the store already moved the task on.
    Lost,
    /// Cancelled through the API: the store already moved the task on.
    Cancelled,
    /// The process is shutting down: the task goes back to the queue.
    Shutdown,
}

/// A task this process is running.
struct Running {
    lease: Lease,
    /// Up to when the lease is known to be held, on this process's monotonic clock.
    held_until: Instant,
    cancel: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl Running {
    fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.cancel.cancel();
    }
}

use lanes::{Hold, Lane};

struct Inner {
    store: DynStore,
    router: HandlerRouter,
    settings: EngineSettings,
    worker_id: String,
    host: String,
    lanes: Vec<Lane>,
    cusum: Option<drift::Cusum>,
    running: Mutex<HashMap<Uuid, Running>>,
    completions: mpsc::Sender<Completion>,
    /// Taken by `start`, which hands it to the completer loop.
    completion_inbox: Mutex<Option<mpsc::Receiver<Completion>>>,
    stop_claiming: CancellationToken,
    stop_background: CancellationToken,
}

/// The workers of one process.
pub struct Engine {
    inner: Arc<Inner>,
}

/// A started engine; [`EngineHandle::shutdown`] stops it gracefully.
pub struct EngineHandle {
    inner: Arc<Inner>,
    lanes: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    /// What the store holds weakly to start tasks at their creation; dropped at shutdown.
    starter: Option<Arc<dyn LocalStarter>>,
}

/// What a shutdown did with the tasks in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Tasks still running when the grace period ended, stopped and put back in the queue.
    pub released: usize,
}

impl Engine {
    /// An engine over `store` running tasks through `router`, under a fresh worker id;
    /// nothing runs until [`Engine::start`].
    pub fn new(store: DynStore, router: HandlerRouter, settings: EngineSettings) -> Engine {
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown-host".into());
        let nonce = Uuid::new_v4().simple().to_string();
        // Unique per process even when hosts and pids repeat (containers).
        let worker_id = format!("{host}:{}:{}", std::process::id(), &nonce[..8]);
        let lanes = lanes::lanes(&settings);
        let (completions, completion_inbox) = completer::channel();
        let cusum = settings.cusum.map(drift::Cusum::new);
        Engine {
            inner: Arc::new(Inner {
                completions,
                completion_inbox: Mutex::new(Some(completion_inbox)),
                store,
                router,
                settings,
                worker_id,
                host,
                lanes,
                cusum,
                running: Mutex::new(HashMap::new()),
                stop_claiming: CancellationToken::new(),
                stop_background: CancellationToken::new(),
            }),
        }
    }

    /// The id this process's workers claim tasks under.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Registers the process, then starts the lanes, the heartbeat, the rescue of expired
    /// leases and the wake-up listener.
    /// It also starts the scheduler, which creates the tasks of due cron schedules.
    pub async fn start(self) -> EngineHandle {
        let inner = self.inner;
        if let Err(err) = inner.store.register_worker(&inner.describe()).await {
            tracing::warn!(error = %err, "cannot register this worker process; running anyway");
        }
        let lanes = (0..inner.lanes.len())
            .flat_map(|i| std::iter::repeat_n(i, inner.lanes[i].claimers))
            .map(|i| tokio::spawn(claim_loop(inner.clone(), i)))
            .collect();
        let sink_inner = inner.clone();
        let sink = Arc::new(move |signal| sink_inner.signal(signal));
        let inbox = inner
            .completion_inbox
            .lock()
            .expect("completion inbox")
            .take()
            .expect("an engine starts once");
        let background = vec![
            tokio::spawn(completer::run(
                inner.store.clone(),
                inbox,
                inner.stop_background.clone(),
            )),
            tokio::spawn(heartbeat_loop(inner.clone())),
            tokio::spawn(fence_loop(inner.clone())),
            crate::maintenance::spawn_reaper(
                inner.store.clone(),
                inner.settings.lease,
                inner.stop_background.clone(),
            ),
            crate::maintenance::spawn(
                inner.store.clone(),
                inner.settings.keeping,
                inner.stop_background.clone(),
            ),
            inner.store.watch(sink, inner.stop_background.clone()),
            tokio::spawn(scheduler::run(
                inner.store.clone(),
                inner.stop_background.clone(),
            )),
        ];
        tracing::info!(
            worker_id = %inner.worker_id,
            concurrency = inner.settings.concurrency,
            escalated_concurrency = inner.settings.escalated_concurrency,
            "workers started"
        );
        let starter = at_creation::offer(&inner);
        EngineHandle {
            inner,
            lanes,
            background,
            starter,
        }
    }
}

impl EngineHandle {
    /// The id this process's workers claim tasks under.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Tasks this process is running right now.
    pub fn in_flight(&self) -> usize {
        self.inner.running.lock().expect("running map").len()
    }

    /// Stops claiming, lets running tasks finish within the grace period, releases the rest
    /// back to the queue, then stops the background loops.
    pub async fn shutdown(self) -> ShutdownReport {
        let inner = self.inner;
        drop(self.starter);
        inner.stop_claiming.cancel();
        for lane in self.lanes {
            let _ = lane.await;
        }
        let mut report = ShutdownReport::default();
        if tokio::time::timeout(inner.settings.shutdown_grace, inner.all_done())
            .await
            .is_err()
        {
            report.released = inner.stop_all(StopReason::Shutdown);
            // Stopped handlers release their tasks as they unwind; give them a moment.
            let _ = tokio::time::timeout(Duration::from_secs(10), inner.all_done()).await;
        }
        inner.stop_background.cancel();
        for task in self.background {
            let _ = task.await;
        }
        if let Err(err) = inner.store.worker_stopped(&inner.worker_id).await {
            tracing::warn!(error = %err, "cannot record this worker process as stopped");
        }
        tracing::info!(released = report.released, "workers stopped");
        report
    }
}

impl Inner {
    fn describe(&self) -> Worker {
        let now = Utc::now();
        Worker {
            id: self.worker_id.clone(),
            host: self.host.clone(),
            pid: std::process::id() as i32,
            version: crate::VERSION.into(),
            concurrency: self.settings.concurrency as i32,
            escalated_concurrency: self.settings.escalated_concurrency as i32,
            lease_seconds: self.settings.lease.as_secs_f64(),
            started_at: now,
            last_seen_at: now,
            stopped_at: None,
        }
    }

    fn signal(&self, signal: Signal) {
        match signal {
            Signal::TasksReady => self.lanes.iter().for_each(|lane| {
                lane.work_announced.store(true, Ordering::SeqCst);
                lane.wake.notify_one();
            }),
            Signal::Cancelled(id) => {
                if let Some(running) = self.running.lock().expect("running map").get(&id) {
                    running.stop(StopReason::Cancelled);
                }
            }
        }
    }

    fn stop_all(&self, reason: StopReason) -> usize {
        let running = self.running.lock().expect("running map");
        running.values().for_each(|r| r.stop(reason));
        running.len()
    }

    /// Resolves once no task is running here: every handler has ended and every outcome is
    /// recorded (or released).
    async fn all_done(&self) {
        while !self.running.lock().expect("running map").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn leases(&self) -> Vec<Lease> {
        let running = self.running.lock().expect("running map");
        running.values().map(|r| r.lease).collect()
    }
}

async fn claim_loop(inner: Arc<Inner>, lane_index: usize) {
    let lane = &inner.lanes[lane_index];
    let mut failures = 0;
    loop {
        let Some(mut holds) = lane.room(&inner.stop_claiming).await else {
            return;
        };
        let claim = Claim {
            worker_id: inner.worker_id.clone(),
            limit: holds.len() as i64,
            lease: inner.settings.lease,
            drift: lane.drift,
            queues: lane.queues.clone(),
            exclude_queues: lane.exclude_queues.clone(),
            types: None,
        };
        let sent = Instant::now();
        let answered = tokio::time::timeout(
            fence::statement_timeout(inner.settings.lease),
            inner.store.claim_tasks(&claim),
        )
        .await;
        let answered = match answered {
            Ok(answer) => answer.map_err(|err| err.to_string()),
            Err(_) => Err("no answer in time".to_string()),
        };
        let mut claimed = match answered {
            Ok(claimed) => claimed,
            Err(err) => {
                failures += 1;
                let wait = after_failures(failures, inner.settings.poll_interval);
                tracing::warn!(lane = %lane.name, error = %err, ?wait, "claim failed; retrying");
                drop(holds);
                if stopped_within(&inner, wait).await {
                    return;
                }
                continue;
            }
        };
        failures = 0;
        // Fewer tasks than asked for: nothing else was ready, so wait for a wake-up (one that
        // arrived while claiming is kept by `wake`) or the poll, rather than claim at once.
        let drained = claimed.len() < holds.len();
        let held_until = fence::held_until(sent, inner.settings.lease);
        // The store answers in no particular order; the slots go first, to the tasks picked
        // first (higher priority, then start time, then arrival), and the tasks held wait
        // for theirs in that order too.
        claimed.sort_by(|a, b| {
            let (a, b) = (&a.task, &b.task);
            (b.priority, a.run_at, a.created_at).cmp(&(a.priority, b.run_at, b.created_at))
        });
        for (task, hold) in claimed.into_iter().zip(holds.drain(..)) {
            inner.start(lane_index, task, hold, held_until);
        }
        drop(holds);
        if drained {
            // While it waits, a task created in this process may start in the lane at once
            // (see `at_creation`).
            lane.work_announced.store(false, Ordering::SeqCst);
            lane.idle_claimers.fetch_add(1, Ordering::SeqCst);
            let stopped = pause(&inner, lane).await;
            lane.idle_claimers.fetch_sub(1, Ordering::SeqCst);
            if stopped {
                return;
            }
        }
    }
}

/// How long a lane waits before claiming again after `failures` failed claims in a row: a
/// quarter second, doubling, at most [`MAX_CLAIM_RETRY`] and never more than the poll
/// interval. Not the poll interval itself: a database that restarts fails the first claims
/// after it, including the one a re-subscribed listener asks for, and a lane that then waited
/// a long poll interval would leave ready work alone for all of it.
fn after_failures(failures: u32, poll_interval: Duration) -> Duration {
    let doubled =
        Duration::from_millis(250).saturating_mul(1 << failures.clamp(1, 6).saturating_sub(1));
    doubled.min(MAX_CLAIM_RETRY).min(poll_interval)
}

/// Sleeps for `wait`; true when claiming stopped meanwhile.
async fn stopped_within(inner: &Inner, wait: Duration) -> bool {
    tokio::select! {
        _ = inner.stop_claiming.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// Waits for a wake-up or the poll interval; true when claiming stopped.
async fn pause(inner: &Inner, lane: &Lane) -> bool {
    tokio::select! {
        _ = inner.stop_claiming.cancelled() => true,
        _ = lane.wake.notified() => false,
        _ = tokio::time::sleep(inner.settings.poll_interval) => false,
    }
}

/// What an attempt carries beside its task: its metric series and how it is stopped.
struct Attempt {
    series: metrics::TaskSeries,
    cancel: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

/// How a handler run ended, before it is turned into an [`Outcome`].
enum Ended {
    Finished(HandlerResult),
    Panicked(String),
    TimedOut(Duration),
    Stopped,
}

impl Inner {
    fn start(
        self: &Arc<Self>,
        lane_index: usize,
        claimed: ClaimedTask,
        hold: Hold,
        held_until: Instant,
    ) {
        let series = metrics::TaskSeries::of(&claimed.task.queue, &claimed.task.task_type);
        series.waited(waited(&claimed.task));
        let cancel = CancellationToken::new();
        let reason = Arc::new(OnceLock::new());
        let running = Running {
            lease: claimed.lease,
            held_until,
            cancel: cancel.clone(),
            reason: reason.clone(),
        };
        self.running
            .lock()
            .expect("running map")
            .insert(claimed.task.id, running);
        let span = task_span(&claimed, &self.worker_id);
        let inner = self.clone();
        // Boxed: the task's cell then holds a pointer, so tokio does not move the whole
        // attempt's state each time it stores or finishes the task.
        let run = async move {
            let attempt = Attempt {
                series,
                cancel,
                reason,
            };
            inner.execute(lane_index, claimed, hold, attempt).await;
        };
        tokio::spawn(Box::pin(run.instrument(span)));
    }

    async fn execute(
        &self,
        lane_index: usize,
        mut claimed: ClaimedTask,
        hold: Hold,
        attempt: Attempt,
    ) {
        let Attempt {
            series,
            cancel,
            reason,
        } = attempt;
        let lane = &self.lanes[lane_index];
        // The handler owns the parameters; nothing after it reads them.
        let params = std::mem::take(&mut claimed.task.params);
        let task = &claimed.task;
        let permit = match hold {
            Hold::Slot(permit) => permit,
            Hold::Ahead(ahead) => {
                let slot = lane.slot_for_held(&self.stop_claiming, &cancel).await;
                drop(ahead);
                match slot {
                    Some(permit) => permit,
                    None => return self.end_unstarted(claimed.lease, &reason).await,
                }
            }
        };
        // The detector sees every task's drift, whichever lane claimed it.
        let drifting = self
            .cusum
            .as_ref()
            .is_some_and(|c| c.observe(task.drift_score));
        let escalated = lane.escalated
            || (lane.escalate_by_drift && task.drift_score >= self.settings.drift_threshold)
            || drifting;
        let lane_timeout = if escalated {
            self.settings.escalated_timeout
        } else {
            lane.timeout
        };
        let (parents, unreadable) = match self.parents(task).await {
            Ok(parents) => (parents, None),
            Err(err) => (Vec::new(), Some(err)),
        };
        let context = TaskContext {
            parents,
            id: task.id,
            task_type: task.task_type.clone(),
            params,
            domain: task.domain.clone(),
            drift_score: task.drift_score,
            attempt: task.attempts,
            max_attempts: task.max_attempts,
            escalated,
            cancel: cancel.clone(),
            store: self.store.clone(),
            traceparent: claimed.traceparent.as_deref().and_then(TraceParent::parse),
            progress: Progress::new(self.store.clone(), claimed.lease, self.settings.lease),
        };
        let timeout = task.timeout_seconds.map_or(lane_timeout, seconds);
        let (name, run) = self.router.dispatch(context);
        let started = std::time::Instant::now();
        let ended = if let Some(err) = unreadable {
            let error = format!("cannot read the task's parents: {err}");
            Ended::Finished(Err(HandlerError::Retryable(error)))
        } else {
            // The moment a task's code begins, for operators following a task and for the
            // pickup benchmark (W2), which sets it beside the moment its enqueue was answered.
            // The task id is repeated beside the span's: W2 reads it from the event's fields.
            tracing::debug!(task_id = %task.id, attempt = task.attempts, "handler started");
            tokio::select! {
            result = AssertUnwindSafe(run).catch_unwind() => match result {
                Ok(result) => Ended::Finished(result),
                Err(panic) => Ended::Panicked(panic_message(panic.as_ref())),
            },
            _ = tokio::time::sleep(timeout) => Ended::TimedOut(timeout),
            _ = cancel.cancelled() => Ended::Stopped,
            }
        };
        // The slot is for running handlers: the next task may start while this outcome is
        // written. The task stays in `running` (its lease renewed) until it is recorded.
        drop(permit);
        lane.observe_run(started.elapsed());
        series.ran(started.elapsed());
        let timed_out = matches!(ended, Ended::TimedOut(_));
        // A handler that returned after being stopped is treated as stopped: its task has
        // already moved on (or is being released), so nothing it says may be stored.
        let stopped = cancel
            .is_cancelled()
            .then(|| reason.get().copied())
            .flatten();
        match stopped {
            Some(StopReason::Shutdown) => self.release(claimed.lease).await,
            Some(StopReason::Lost | StopReason::Cancelled) => {
                if stopped == Some(StopReason::Cancelled) {
                    let cancelled = AttemptOutcome::Cancelled;
                    series.attempt_ended(cancelled);
                }
                tracing::debug!(task_id = %task.id, "task cancelled or lease lost; result dropped")
            }
            None => {
                let outcome = self.outcome(escalated, task, name, ended);
                log_outcome(&outcome);
                let label = attempt_label(&outcome, timed_out);
                if self.finish(claimed.lease, outcome).await {
                    series.attempt_ended(label);
                }
            }
        }
        self.running.lock().expect("running map").remove(&task.id);
    }

    /// A task held ahead that never started: stopped through the store (cancelled, lease
    /// lost), it is left as the store has it; otherwise (the process stopped claiming, or no
    /// slot freed in time) it goes back to the queue uncounted.
    async fn end_unstarted(&self, lease: Lease, reason: &OnceLock<StopReason>) {
        match reason.get() {
            Some(StopReason::Lost | StopReason::Cancelled) => {
                tracing::debug!(task_id = %lease.task_id, "task cancelled or lease lost before it started")
            }
            Some(StopReason::Shutdown) | None => self.release(lease).await,
        }
        self.running
            .lock()
            .expect("running map")
            .remove(&lease.task_id);
    }

    /// The task's parents with how they ended, for its handler.
    async fn parents(
        &self,
        task: &crate::model::Task,
    ) -> Result<Vec<Parent>, crate::store::StoreError> {
        if task.depends_on.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = self.store.get_tasks(&task.depends_on).await?;
        // In the order the task named them.
        found.sort_by_key(|p| task.depends_on.iter().position(|id| *id == p.id));
        Ok(found.into_iter().map(Parent::of).collect())
    }

    fn outcome(
        &self,
        escalated: bool,
        task: &crate::model::Task,
        handler: Option<String>,
        ended: Ended,
    ) -> Outcome {
        let error = match ended {
            Ended::Finished(Ok(output)) => {
                let path = if escalated { "escalated" } else { "fast" };
                let envelope =
                    json!({"success": true, "path": path, "handler": handler, "result": output});
                match self.oversized(&envelope) {
                    None => return Outcome::Completed(envelope),
                    Some(error) => error,
                }
            }
            Ended::Finished(Err(err)) => err,
            Ended::Panicked(message) => {
                HandlerError::Permanent(format!("handler panicked: {message}"))
            }
            Ended::TimedOut(after) => {
                HandlerError::Retryable(format!("timed out after {} s", after.as_secs_f64()))
            }
            Ended::Stopped => HandlerError::Retryable("stopped".into()),
        };
        match error {
            HandlerError::Retryable(error) => self.settings.retry.after_failure(task, error, None),
            HandlerError::Permanent(error) => Outcome::Failed(error),
        }
    }

    /// The error of an attempt whose result is over the cap: storing it whole would bloat the
    /// row every read returns, and storing part of it would pass off a cut answer as the
    /// handler's. Running again would most likely produce the same, so it is not retried.
    fn oversized(&self, envelope: &serde_json::Value) -> Option<HandlerError> {
        let cap = self.settings.max_result_bytes;
        limits::json_over(envelope, cap).then(|| {
            HandlerError::Permanent(format!(
                "the handler's result is over {} bytes as compact JSON (the cap set by \
                 SEEDCORE_MAX_RESULT_BYTES); it was not stored",
                limits::thousands(cap)
            ))
        })
    }

    /// Stores the outcome through the completer, retrying briefly when the database is
    /// unreachable: if it stays unreachable the lease expires and the task runs again
    /// (at-least-once). True when the outcome was recorded.
    async fn finish(&self, lease: Lease, mut outcome: Outcome) -> bool {
        let mut pause = Duration::from_millis(100);
        for _ in 0..5 {
            let (done, recorded) = oneshot::channel();
            let completion = Completion {
                lease,
                outcome,
                done,
            };
            if self.completions.send(completion).await.is_err() {
                return false;
            }
            match recorded.await {
                Ok(Ok(true)) => return true,
                Ok(Ok(false)) => {
                    tracing::info!(task_id = %lease.task_id, "lease lost before the attempt was recorded; result dropped");
                    return false;
                }
                Ok(Err(unrecorded)) => {
                    let error = unrecorded.error;
                    tracing::warn!(task_id = %lease.task_id, %error, "cannot record the attempt yet");
                    outcome = unrecorded.outcome;
                    tokio::time::sleep(pause).await;
                    pause *= 3;
                }
                Err(_) => return false,
            }
        }
        false
    }

    async fn release(&self, lease: Lease) {
        if let Err(err) = self.store.release(&[lease]).await {
            tracing::warn!(task_id = %lease.task_id, error = %err, "cannot release the task; its lease will expire instead");
        }
    }
}

/// Renews the leases of the running tasks every third of the lease (sooner after a failure),
/// moving their local deadlines on; stops the tasks whose lease the store no longer holds.
async fn heartbeat_loop(inner: Arc<Inner>) {
    let lease = inner.settings.lease;
    let mut wait = lease / 3;
    loop {
        tokio::select! {
            _ = inner.stop_background.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = match inner.renew().await {
            Ok(()) => {
                inner.seen().await;
                lease / 3
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew leases");
                fence::renewal_retry(lease)
            }
        };
    }
}

impl Inner {
    /// Renews every lease held, in one statement bounded in time.
    async fn renew(&self) -> Result<(), String> {
        let held = self.leases();
        if held.is_empty() {
            return Ok(());
        }
        let lease = self.settings.lease;
        let sent = Instant::now();
        let renewed = tokio::time::timeout(
            fence::statement_timeout(lease),
            self.store.renew_leases(&held, lease),
        )
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|err| err.to_string())?;
        let held_until = fence::held_until(sent, lease);
        let mut running = self.running.lock().expect("running map");
        for lease in &held {
            let Some(r) = running
                .get_mut(&lease.task_id)
                .filter(|r| r.lease == *lease)
            else {
                continue;
            };
            if renewed.contains(lease) {
                r.held_until = r.held_until.max(held_until);
            } else {
                r.stop(StopReason::Lost);
            }
        }
        Ok(())
    }

    /// Records that this process is alive, bounded in time like a renewal.
    async fn seen(&self) {
        let timeout = fence::statement_timeout(self.settings.lease);
        match tokio::time::timeout(timeout, self.store.worker_seen(&self.worker_id)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot record this worker's heartbeat"),
            Err(_) => tracing::warn!("cannot record this worker's heartbeat: no answer in time"),
        }
    }

    /// Stops the tasks whose lease is no longer known to be held; when to look again.
    fn fence(&self, now: Instant, margin: Duration) -> Instant {
        let running = self.running.lock().expect("running map");
        let mut stopped = 0;
        for r in running.values() {
            if !r.cancel.is_cancelled() && fence::expired(r.held_until, now, margin) {
                r.stop(StopReason::Lost);
                stopped += 1;
            }
        }
        if stopped > 0 {
            tracing::warn!(
                stopped,
                "stopped tasks whose lease could not be renewed in time; their results are \
                 dropped and the store hands them to another worker"
            );
        }
        let live = running.values().filter(|r| !r.cancel.is_cancelled());
        fence::next_check(live.map(|r| r.held_until), now, margin)
    }
}

/// Stops each running task as its lease's local deadline comes within the margin, whatever the
/// heartbeat is doing (a renewal may be waiting on a database that does not answer).
async fn fence_loop(inner: Arc<Inner>) {
    let margin = fence::margin(inner.settings.lease);
    loop {
        let next = inner.fence(Instant::now(), margin);
        tokio::select! {
            _ = inner.stop_background.cancelled() => return,
            _ = tokio::time::sleep_until(next.into()) => {}
        }
    }
}

/// One line per recorded attempt, in the task's span.
fn log_outcome(outcome: &Outcome) {
    match outcome {
        Outcome::Completed(_) => tracing::debug!(outcome = "completed", "attempt ended"),
        Outcome::Retry { error, run_at } => {
            tracing::debug!(outcome = "retry", %error, %run_at, "attempt ended")
        }
        Outcome::Failed(error) => tracing::debug!(outcome = "failed", %error, "attempt ended"),
    }
}

/// The span an attempt runs in: every line logged while it runs, by the engine or the handler,
/// names the task, the attempt, this worker, the queue, the type and the trace, if any.
fn task_span(claimed: &ClaimedTask, worker: &str) -> tracing::Span {
    let task = &claimed.task;
    let trace_id = claimed
        .traceparent
        .as_deref()
        .and_then(TraceParent::parse)
        .map(|parent| parent.trace_id());
    tracing::info_span!(
        "task",
        task_id = %task.id,
        attempt = task.attempts,
        worker = worker,
        queue = %task.queue,
        r#type = %task.task_type,
        trace_id = trace_id,
    )
}

/// The `outcome` label of an attempt that ended with `outcome`.
fn attempt_label(outcome: &Outcome, timed_out: bool) -> AttemptOutcome {
    match outcome {
        _ if timed_out => AttemptOutcome::TimedOut,
        Outcome::Completed(_) => AttemptOutcome::Completed,
        Outcome::Retry { .. } => AttemptOutcome::Retried,
        Outcome::Failed(_) => AttemptOutcome::Failed,
    }
}

/// How long the claimed task waited from due to claimed.
fn waited(task: &crate::model::Task) -> Duration {
    let claimed = task.started_at.unwrap_or_else(Utc::now);
    (claimed - task.run_at).to_std().unwrap_or_default()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    #[test]
    fn the_library_defaults_are_the_binary_defaults() {
        // The binary's settings with every default and no environment.
        let command = EngineConfig::augment_args(clap::Command::new("seedcore"))
            .mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(["seedcore"]).unwrap();
        let config = EngineConfig::from_arg_matches(&matches).unwrap();
        assert_eq!(EngineSettings::from(&config), EngineSettings::default());
    }

    #[test]
    fn a_failed_claim_is_retried_soon_backing_off_to_a_cap_within_the_poll_interval() {
        let long_poll = Duration::from_secs(600);
        let waits: Vec<u64> = (1..=8)
            .map(|n| after_failures(n, long_poll).as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        let short_poll = Duration::from_millis(300);
        assert_eq!(after_failures(4, short_poll), short_poll);
    }
}
