//! Tasks: the stored row as the API shows it, the status lists the state machine is built on
//! (see [`super::transition`], which decides every move), and the dependency rule.
//!
//! Invariants the state machine enforces (and the stores implement with conditional updates):
//! - `run` moves only `created`, `failed` and `cancelled` tasks to `queued`; every other status is
//!   left as it is, so calling `run` twice queues (and executes) the task once.
//! - `cancel` leaves `completed` and `failed` tasks alone and makes every other task `cancelled`;
//!   nothing moves a task out of `cancelled` except an explicit `run`.
//! - A task with `depends_on` waits `blocked` until every parent is final, then becomes `queued`
//!   when they all completed (or, with `run_on_failure`, whatever they ended as), and
//!   `cancelled`, naming the parent, when one failed or was cancelled: see [`waiting_on`].
//! - Only a worker holding the current lease moves a task out of `running` to `completed`,
//!   `failed` or `retry`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Actor;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Stored, not yet asked to run.
    Created,
    /// Waiting for the tasks it depends on to finish.
    Blocked,
    /// Waiting for a worker.
    Queued,
    /// A worker holds its lease and runs its handler.
    Running,
    /// An attempt failed with a retryable error; it runs again at `run_at`.
    Retry,
    /// The handler succeeded; `result` holds its envelope.
    Completed,
    /// The handler failed for good; `error` says why.
    Failed,
    /// Cancelled through the API; stays so until run again.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in the order of a task's life.
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Created,
        TaskStatus::Blocked,
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Retry,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The name used in JSON and in the database (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Created => "created",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Retry => "retry",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// The status with this name (exact, lowercase); None for anything else.
    pub fn parse(text: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The statuses from which `run` queues the task again.
    pub const RUNNABLE: [TaskStatus; 3] = [
        TaskStatus::Created,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The statuses from which `cancel` makes the task `cancelled`.
    pub const CANCELLABLE: [TaskStatus; 5] = [
        TaskStatus::Created,
        TaskStatus::Blocked,
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Retry,
    ];

    /// The statuses a worker claims a task from (once its `run_at` has passed).
    pub const READY: [TaskStatus; 2] = [TaskStatus::Queued, TaskStatus::Retry];

    /// Whether `run` moves a task in this status to `queued`.
    pub fn run_queues(self) -> bool {
        TaskStatus::RUNNABLE.contains(&self)
    }

    /// Whether `cancel` moves a task in this status to `cancelled`.
    pub fn cancel_applies(self) -> bool {
        TaskStatus::CANCELLABLE.contains(&self)
    }

    /// Whether nothing more happens to the task unless someone asks.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task as the API returns it. The first eleven fields are the contract's, in its order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    /// Assigned by the service when the task is created.
    pub id: Uuid,
    /// Picks the handler that runs the task.
    #[serde(rename = "type")]
    pub task_type: String,
    /// Free text for people; empty when none was given.
    pub description: String,
    /// The handler's input, a JSON object.
    #[schema(value_type = Object)]
    pub params: Value,
    /// Optional grouping: filters lists and may pick a domain-specific handler.
    pub domain: Option<String>,
    /// At or above the drift threshold the task runs on the escalated path; 0 by default.
    pub drift_score: f64,
    /// Where the task is in its life.
    pub status: TaskStatus,
    /// The handler's result envelope (`success`, `path`, `handler`, `result`) once completed.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why the task failed, or why its last attempt did while it waits to retry.
    pub error: Option<String>,
    /// When the task was created.
    pub created_at: DateTime<Utc>,
    /// When the task last changed.
    pub updated_at: DateTime<Utc>,
    /// Attempts started since the task was last queued by `run` or create.
    pub attempts: i32,
    /// Attempts allowed before a retryable failure becomes final.
    pub max_attempts: i32,
    /// Seconds an attempt may run; null means the engine's default for its path.
    pub timeout_seconds: Option<f64>,
    /// When the task may next start (for `queued` and `retry` tasks).
    pub run_at: DateTime<Utc>,
    /// When the current or last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the task reached `completed`, `failed` or `cancelled`.
    pub finished_at: Option<DateTime<Utc>>,
    /// The worker holding the task while it runs.
    pub worker_id: Option<String>,
    /// Facts the task refers to.
    pub attached_fact_ids: Vec<Uuid>,
    /// The queue the task waits in (`default` unless given).
    pub queue: String,
    /// Higher runs first; first in, first out within a priority.
    pub priority: i32,
    /// The key that makes a repeated create return this task instead of a new one.
    pub idempotency_key: Option<String>,
    /// The tasks that must finish before this one runs (it is `blocked` until then).
    pub depends_on: Vec<Uuid>,
    /// Run once the parents are final even if one failed or was cancelled.
    pub run_on_failure: bool,
    /// The workflow the task belongs to, if it was created as part of one.
    pub workflow_id: Option<Uuid>,
    /// The task's name within its workflow.
    pub workflow_key: Option<String>,
    /// How far along the current or last attempt is, from 0 to 1, as its worker last reported
    /// it (a pull worker's task heartbeat); null until a report, and again when an attempt
    /// starts.
    pub progress: Option<f64>,
}

/// The queue a task joins when its creator names none.
pub const DEFAULT_QUEUE: &str = "default";

/// A queue name: 1 to 100 letters, digits, `_`, `-`, `.` or `:`.
pub fn valid_queue_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
}

/// Attempts a task gets when neither its creator nor the configuration says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;

/// What a client asks for when it creates a task, after validation.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTask {
    /// The id the task will have (fresh from [`NewTask::of_type`]).
    pub id: Uuid,
    /// Picks the handler that runs the task.
    pub task_type: String,
    /// Free text for people; empty by default.
    pub description: String,
    /// The handler's input.
    pub params: Map<String, Value>,
    /// Optional grouping: filters lists and may pick a domain-specific handler.
    pub domain: Option<String>,
    /// At or above the drift threshold the task runs on the escalated path; 0 by default.
    pub drift_score: f64,
    /// Queue the task at once instead of storing it as `created`; false by default.
    pub run_immediately: bool,
    /// Attempts allowed before a retryable failure becomes final (at least 1).
    pub max_attempts: i32,
    /// Seconds an attempt may run; None means the engine's default for its path.
    pub timeout_seconds: Option<f64>,
    /// Facts the task refers to.
    pub attached_fact_ids: Vec<Uuid>,
    /// The queue to wait in.
    pub queue: String,
    /// Higher runs first; 0 by default.
    pub priority: i32,
    /// Not before this time; giving it queues the task (it waits as `queued` until then).
    pub run_at: Option<DateTime<Utc>>,
    /// A repeated create with the same key returns the first task.
    pub idempotency_key: Option<String>,
    /// Tasks that must finish first; the task waits `blocked` until they do.
    pub depends_on: Vec<Uuid>,
    /// Run when the parents are final even if one of them failed or was cancelled.
    pub run_on_failure: bool,
    /// The workflow and the task's name in it, for tasks created as part of one.
    pub workflow: Option<(Uuid, String)>,
    /// Who creates it, for the audit trail; None leaves the created event without one.
    pub actor: Option<Actor>,
    /// The W3C `traceparent` the task was created under, as [`TraceParent`] prints it; its
    /// executions log the trace and pass a child of it to remote executors.
    ///
    /// [`TraceParent`]: crate::telemetry::traceparent::TraceParent
    pub traceparent: Option<String>,
}

impl NewTask {
    /// A task of the given type with every optional field at its default.
    pub fn of_type(task_type: impl Into<String>) -> NewTask {
        NewTask {
            id: Uuid::new_v4(),
            task_type: task_type.into(),
            description: String::new(),
            params: Map::new(),
            domain: None,
            drift_score: 0.0,
            run_immediately: false,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout_seconds: None,
            attached_fact_ids: Vec::new(),
            queue: DEFAULT_QUEUE.into(),
            priority: 0,
            run_at: None,
            idempotency_key: None,
            depends_on: Vec::new(),
            run_on_failure: false,
            workflow: None,
            actor: None,
            traceparent: None,
        }
    }

    /// `queued` when the task is to run immediately or at a given time, `created` otherwise.
    /// (A task with dependencies starts as [`NewTask::start`] says.)
    pub fn initial_status(&self) -> TaskStatus {
        if self.run_immediately || self.run_at.is_some() {
            TaskStatus::Queued
        } else {
            TaskStatus::Created
        }
    }

    /// The status a new task starts in, and the error it carries, given the current status of
    /// each of its parents (in the order of `depends_on`): without parents, as
    /// [`NewTask::initial_status`]; with parents, `blocked` while one is unfinished, else as
    /// [`waiting_on`] decides (a task whose parents all completed is queued at once).
    pub fn start(&self, parents: &[(Uuid, TaskStatus)]) -> (TaskStatus, Option<String>) {
        if self.depends_on.is_empty() {
            return (self.initial_status(), None);
        }
        match waiting_on(self.run_on_failure, parents) {
            Waiting::Blocked => (TaskStatus::Blocked, None),
            Waiting::Ready => (TaskStatus::Queued, None),
            Waiting::Doomed(reason) => (TaskStatus::Cancelled, Some(reason)),
        }
    }
}

/// Where a task with dependencies stands, given its parents' statuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// Some parent has not finished (or, without `run_on_failure`, all that finished completed).
    Blocked,
    /// Every parent completed, or with `run_on_failure` every parent is final: run it.
    Ready,
    /// A parent failed or was cancelled and the task does not run on failure: cancel it, for
    /// the reason given.
    Doomed(String),
}

/// The dependency rule, shared by task creation and (in SQL) by the stores' triggers, which
/// `tests/transitions.rs` checks against it: a failed or cancelled parent dooms a task at once,
/// even while its other parents still run, unless the task runs on failure; otherwise the task
/// is ready once every parent is done (see [`super::transition::parent_done`]).
pub fn waiting_on(run_on_failure: bool, parents: &[(Uuid, TaskStatus)]) -> Waiting {
    if !run_on_failure {
        let mut bad: Vec<_> = parents
            .iter()
            .filter(|(_, s)| matches!(s, TaskStatus::Failed | TaskStatus::Cancelled))
            .collect();
        bad.sort_by_key(|(id, _)| *id);
        if let Some((id, status)) = bad.first() {
            return Waiting::Doomed(dependency_reason(*id, *status));
        }
    }
    if parents
        .iter()
        .all(|(_, s)| super::transition::parent_done(run_on_failure, *s))
    {
        Waiting::Ready
    } else {
        Waiting::Blocked
    }
}

/// The error of a task cancelled because of its parent (the triggers write the same text).
pub fn dependency_reason(parent: Uuid, status: TaskStatus) -> String {
    format!("dependency {parent} {status}")
}

/// One entry of a task's audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskEvent {
    /// Position in the trail; increases with time.
    pub seq: i64,
    /// The task the entry belongs to.
    pub task_id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened: created, queued, claimed, completed, retry, failed, cancelled, rescued, released.
    pub kind: String,
    /// The status before; null when the task was created.
    pub from_status: Option<TaskStatus>,
    /// The status after.
    pub to_status: TaskStatus,
    /// The task's attempt count at that moment.
    pub attempt: i32,
    /// The worker that held (or had held) the task, if any.
    pub worker_id: Option<String>,
    /// The error stored with a failure, a retry or a rescue.
    pub error: Option<String>,
    /// Who made the change: `token:<name>`, `anonymous` (an API call without a token),
    /// `worker:<id>`, `schedule:<name>` or `system:<reason>`; null for events written before
    /// actors were recorded.
    #[schema(value_type = Option<String>, example = "token:deploy-bot")]
    pub actor: Option<Actor>,
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;

    #[test]
    fn run_queues_only_created_failed_and_cancelled_tasks() {
        let queued: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.run_queues())
            .collect();
        assert_eq!(queued, vec![Created, Failed, Cancelled]);
    }

    #[test]
    fn cancel_leaves_completed_failed_and_cancelled_tasks_alone() {
        let untouched: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| !s.cancel_applies())
            .collect();
        assert_eq!(untouched, vec![Completed, Failed, Cancelled]);
    }

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                Value::String(status.as_str().into())
            );
        }
        assert_eq!(TaskStatus::parse("RUNNING"), None);
    }

    #[test]
    fn a_dependent_waits_until_every_parent_completed() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            waiting_on(false, &[(a, Completed), (b, Running)]),
            Waiting::Blocked
        );
        assert_eq!(
            waiting_on(false, &[(a, Completed), (b, Completed)]),
            Waiting::Ready
        );
    }

    #[test]
    fn a_failed_parent_dooms_a_dependent_at_once_naming_the_lowest_such_parent() {
        let (low, high) = {
            let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
            (x.min(y), x.max(y))
        };
        let parents = [(high, Failed), (low, Cancelled), (Uuid::new_v4(), Running)];
        assert_eq!(
            waiting_on(false, &parents),
            Waiting::Doomed(format!("dependency {low} cancelled"))
        );
    }

    #[test]
    fn with_run_on_failure_a_dependent_runs_once_every_parent_is_final() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            waiting_on(true, &[(a, Failed), (b, Queued)]),
            Waiting::Blocked
        );
        assert_eq!(
            waiting_on(true, &[(a, Failed), (b, Cancelled)]),
            Waiting::Ready
        );
    }

    #[test]
    fn a_new_task_with_parents_starts_blocked_queued_or_cancelled() {
        let parent = Uuid::new_v4();
        let mut task = NewTask::of_type("echo");
        task.depends_on = vec![parent];
        assert_eq!(task.start(&[(parent, Running)]), (Blocked, None));
        assert_eq!(task.start(&[(parent, Completed)]), (Queued, None));
        assert_eq!(
            task.start(&[(parent, Failed)]),
            (Cancelled, Some(format!("dependency {parent} failed")))
        );
    }

    #[test]
    fn a_new_task_is_queued_only_when_asked_to_run_immediately() {
        let mut task = NewTask::of_type("echo");
        assert_eq!(task.initial_status(), Created);
        task.run_immediately = true;
        assert_eq!(task.initial_status(), Queued);
    }
}
