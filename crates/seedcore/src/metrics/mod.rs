//! Prometheus metrics: what this process counts as it works, and what a scrape reads from the
//! store.
//!
//! Two kinds, kept apart on purpose:
//! - **counted here** (counters and histograms): tasks created through this process's API and
//!   scheduler, attempt outcomes of this process's workers (and the expired leases its rescue
//!   loop returned), schedule fires, HTTP requests. They live in one process-wide set
//!   ([`global`]), as Prometheus expects of a process; a deployment of several processes is
//!   summed over them by the query (`sum by (queue) (...)`);
//! - **read at scrape time** (gauges, see [`scrape`]): tasks per queue and status, the oldest
//!   ready task's age, paused queues, worker processes, schedules' last fires and the pool.
//!   They describe the shared database, so every process reports the same values; they are
//!   read from the counters the store keeps, never by counting task rows.
//!
//! Invariants: no label carries a task id, token or raw path; labels whose values clients pick
//! are capped (see [`labels`]); recording never waits on I/O and never fails; with metrics
//! switched off ([`set_enabled`]) recording does nothing and `/metrics` answers 404.

pub mod fires;
pub(crate) mod http;
mod labels;
pub mod scrape;

use std::{
    borrow::Cow,
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

pub use http::{metrics_route, router as metrics_router, track_requests};
use labels::{
    AttemptLabels, Capped, RequestLabels, RouteLabels, ScheduleLabels, TaskLabels, UNMATCHED,
};

/// Upper bounds of every duration histogram, in seconds: from a millisecond to four hours,
/// roughly ×2.5 apart, so both an HTTP request and a long batch task land in a useful bucket.
pub const DURATION_BUCKETS: [f64; 22] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

/// How one attempt ended, as the `outcome` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The handler succeeded and its result was stored.
    Completed,
    /// The attempt failed for good: no attempt left, or an error not worth retrying.
    Failed,
    /// The attempt failed and the task waits to run again.
    Retried,
    /// The task was cancelled while this attempt ran.
    Cancelled,
    /// The attempt ran past its timeout (the task then runs again or fails, by its attempts).
    TimedOut,
    /// The worker stopped renewing the attempt's lease and the rescue took the task back.
    LeaseExpired,
}

impl AttemptOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Retried => "retried",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::LeaseExpired => "lease_expired",
        }
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The counters and histograms of one process.
#[derive(Debug)]
pub struct Metrics {
    tasks_created: Family<TaskLabels, Counter>,
    started_at_creation: Family<TaskLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    schedule_fires: Family<ScheduleLabels, Counter>,
    http_requests: Family<RequestLabels, Counter>,
    run_duration: Histograms<TaskLabels>,
    queue_wait: Histograms<TaskLabels>,
    http_duration: Histograms<RouteLabels>,
    queues: Capped,
    types: Capped,
    schedules: Capped,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            tasks_created: Family::default(),
            started_at_creation: Family::default(),
            attempts: Family::default(),
            schedule_fires: Family::default(),
            http_requests: Family::default(),
            run_duration: Family::new_with_constructor(duration_histogram),
            queue_wait: Family::new_with_constructor(duration_histogram),
            http_duration: Family::new_with_constructor(duration_histogram),
            queues: Capped::default(),
            types: Capped::default(),
            schedules: Capped::default(),
        }
    }
}

static GLOBAL: OnceLock<Metrics> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(true);

/// This process's metrics.
pub fn global() -> &'static Metrics {
    GLOBAL.get_or_init(Metrics::default)
}

/// Switches recording and `/metrics` on or off for the whole process (on by default).
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether metrics are recorded and served.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The recorder to use now: None while metrics are off.
fn recorder() -> Option<&'static Metrics> {
    enabled().then(global)
}

/// Counts a task created through this process (API, workflow or schedule).
pub fn task_created(queue: &str, task_type: &str) {
    if let Some(m) = recorder() {
        m.tasks_created
            .get_or_create(&m.task(queue, task_type))
            .inc();
    }
}

/// Counts a task this process's create wrote already claimed by one of its workers.
pub fn task_started_at_creation(queue: &str, task_type: &str) {
    if let Some(m) = recorder() {
        m.started_at_creation
            .get_or_create(&m.task(queue, task_type))
            .inc();
    }
}

/// Counts one attempt's outcome.
pub fn attempt_ended(queue: &str, task_type: &str, outcome: AttemptOutcome) {
    TaskSeries::of(queue, task_type).attempt_ended(outcome);
}

/// One task's labels, capped once for every figure its attempt records (its wait, its run,
/// how it ended) rather than once per figure: a worker records three per task.
pub struct TaskSeries(Option<(&'static Metrics, TaskLabels)>);

impl TaskSeries {
    /// The series of a task of `queue` and `task_type`; records nothing while metrics are off.
    pub fn of(queue: &str, task_type: &str) -> TaskSeries {
        TaskSeries(recorder().map(|m| (m, m.task(queue, task_type))))
    }

    /// Records how long the task waited from ready to claimed.
    pub fn waited(&self, waited: Duration) {
        if let Some((m, labels)) = &self.0 {
            m.queue_wait
                .get_or_create(labels)
                .observe(waited.as_secs_f64());
        }
    }

    /// Records how long its handler ran, whatever the outcome.
    pub fn ran(&self, took: Duration) {
        if let Some((m, labels)) = &self.0 {
            m.run_duration
                .get_or_create(labels)
                .observe(took.as_secs_f64());
        }
    }

    /// Counts one attempt's outcome.
    pub fn attempt_ended(&self, outcome: AttemptOutcome) {
        if let Some((m, task)) = &self.0 {
            let labels = AttemptLabels {
                queue: task.queue.clone(),
                r#type: task.r#type.clone(),
                outcome: outcome.as_str(),
            };
            m.attempts.get_or_create(&labels).inc();
        }
    }
}

/// Counts a fire of the schedule `name` that created its task.
pub fn schedule_fired(name: &str) {
    if let Some(m) = recorder() {
        let labels = ScheduleLabels {
            schedule: m.schedules.label(name),
        };
        m.schedule_fires.get_or_create(&labels).inc();
    }
}

/// Counts an answered HTTP request; `route` is its route template, None when none matched.
pub fn request_answered(method: &'static str, route: Option<&str>, status: u16, took: Duration) {
    if let Some(m) = recorder() {
        let route = match route {
            None => Cow::Borrowed(UNMATCHED),
            Some(route) => crate::api::known_route(route)
                .map_or_else(|| Cow::Owned(route.to_owned()), Cow::Borrowed),
        };
        let method = Cow::Borrowed(method);
        let timed = RouteLabels {
            method: method.clone(),
            route: route.clone(),
        };
        m.http_duration
            .get_or_create(&timed)
            .observe(took.as_secs_f64());
        let counted = RequestLabels {
            method,
            route,
            status,
        };
        m.http_requests.get_or_create(&counted).inc();
    }
}

impl Metrics {
    fn task(&self, queue: &str, task_type: &str) -> TaskLabels {
        TaskLabels {
            queue: self.queues.label(queue),
            r#type: self.types.label(task_type),
        }
    }

    /// Queues this process has counted something in, for the zeros a scrape reports.
    pub fn queues_seen(&self) -> Vec<String> {
        self.queues.values()
    }

    /// Adds the counted families to `registry` (they stay shared with this process's counts).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "seedcore_tasks_created",
            "Tasks created through this process (API, workflows, schedules)",
            self.tasks_created.clone(),
        );
        registry.register(
            "seedcore_tasks_started_at_creation",
            "Tasks this process created already claimed by one of its workers, which started \
             them without a claim",
            self.started_at_creation.clone(),
        );
        registry.register(
            "seedcore_task_attempts",
            "Attempts this process's workers ended, by outcome (completed, failed, retried, \
             cancelled, timed_out, lease_expired)",
            self.attempts.clone(),
        );
        registry.register(
            "seedcore_schedule_fires",
            "Schedule fires that created a task in this process",
            self.schedule_fires.clone(),
        );
        registry.register(
            "seedcore_http_requests",
            "HTTP requests answered, by method, route template and status",
            self.http_requests.clone(),
        );
        registry.register(
            "seedcore_task_run_duration_seconds",
            "How long handlers ran, per attempt",
            self.run_duration.clone(),
        );
        registry.register(
            "seedcore_task_queue_wait_seconds",
            "How long tasks waited from ready (due) to claimed",
            self.queue_wait.clone(),
        );
        registry.register(
            "seedcore_http_request_duration_seconds",
            "How long HTTP requests took to answer, by method and route template",
            self.http_duration.clone(),
        );
    }
}
