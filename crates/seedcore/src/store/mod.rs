//! Storage: one trait, implemented per backend; everything else talks to `dyn Store`.
//!
//! Invariants every implementation keeps:
//! - every method is one short transaction (none is held across a handler's execution);
//! - a claim marks tasks `running`, counts the attempt and hands out a fresh lease token;
//!   completion, failure, heartbeat and release apply only while that token is current, so a
//!   worker that lost its lease (cancelled, rescued, released) changes nothing;
//! - every status change is appended to the task's event trail in the same transaction;
//! - a task becoming ready (queued or retry) and a running task being cancelled are signalled
//!   to every process watching the store, as a hint: polling remains the guarantee.

mod coalesce;
pub mod postgres;
pub mod schedules;
pub mod sqlite;
mod watchers;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{error::DatabaseError, sqlite::SqliteError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::legacy::LegacyTask;
use crate::model::{
    Fact, FactCursor, FactPatch, IdRef, NewFact, NewTask, QueueInfo, Task, TaskEvent, TaskStatus,
    Worker, Workflow, WorkflowPlan, WorkflowSummary,
};
use crate::model::{NewSchedule, Schedule, SchedulePatch};

pub use postgres::PgStore;
pub use schedules::{FIRE_BATCH, Firing, MissedFires};
pub use sqlite::SqliteStore;

/// A shared handle to whichever store the process was configured with.
pub type DynStore = Arc<dyn Store>;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row has the id, or no id starts with the prefix.
    #[error("not found")]
    NotFound,
    /// The id prefix (as sent) matches more than one row.
    #[error("Ambiguous id prefix '{0}'")]
    AmbiguousPrefix(String),
    /// The database cannot be reached or has no free connection.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database failed the statement for a reason other than availability.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that does not fit the model (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The backend cannot do what was asked (it says what and why).
    #[error("{0}")]
    Unsupported(String),
    /// A new task depends on tasks that do not exist (these ids).
    #[error("unknown dependencies: {0:?}")]
    UnknownDependencies(Vec<Uuid>),
    /// A value that must be unique is in use (it says which).
    #[error("{0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.try_downcast_ref::<SqliteError>() {
            Some(sqlite) => sqlite_busy(sqlite),
            // Class 08 is connection trouble, 57P0x an administrator or crash shutdown, 53300
            // too many connections: all pass when the server is back.
            None => db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0") || c == "53300"),
        },
        _ => false,
    }
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code: another connection held the
/// file longer than the busy timeout. Trying again later succeeds.
fn sqlite_busy(err: &SqliteError) -> bool {
    let primary = err
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff);
    matches!(primary, Some(5 | 6))
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a list and the number of rows matching before paging.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// Rows matching the filters, whatever `limit` and `offset` say.
    pub total: i64,
    /// The rows of this page, in the list's order.
    pub items: Vec<T>,
}

/// Filters and paging for the task list.
#[derive(Clone, Debug, Default)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this type.
    pub task_type: Option<String>,
    /// Only tasks in this domain.
    pub domain: Option<String>,
    /// Most tasks to return; the list is newest first.
    pub limit: i64,
    /// Tasks to skip before the page starts.
    pub offset: i64,
}

/// Filters and paging for the fact list.
#[derive(Clone, Debug, Default)]
pub struct FactQuery {
    /// Case-insensitive substring of the text or of the metadata as JSON text; taken literally.
    pub q: Option<String>,
    /// Full-text search (stemmed words, ranked); results are ordered by rank.
    pub search: Option<String>,
    /// The fact carries every one of these tags.
    pub tags: Vec<String>,
    /// The fact carries at least one of these tags.
    pub any_tags: Vec<String>,
    /// Each filter must match a top-level metadata key.
    pub meta: Vec<MetaFilter>,
    /// Only facts created strictly after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Only facts created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// Continue after this position of the newest-first order (keyset paging).
    pub cursor: Option<FactCursor>,
    /// How `total` is counted; exactly by default.
    pub count: CountMode,
    /// Most facts to return.
    pub limit: i64,
    /// Facts to skip before the page starts.
    pub offset: i64,
}

impl FactQuery {
    /// Whether the query uses more than the original service's `q`, `tag`, `limit`, `offset`.
    pub fn is_extended(&self) -> bool {
        self.search.is_some()
            || !self.any_tags.is_empty()
            || !self.meta.is_empty()
            || self.created_after.is_some()
            || self.created_before.is_some()
            || self.cursor.is_some()
            || self.count != CountMode::Exact
    }
}

/// `meta.<key>=<value>`: the metadata's `key` holds (contains, for objects and arrays) one of
/// `values`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaFilter {
    /// The top-level metadata key.
    pub key: String,
    /// Accepted values; the filter matches when any one of them does.
    pub values: Vec<Value>,
}

/// How the total of a fact list is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CountMode {
    /// Every match is counted (the contract's behaviour).
    #[default]
    Exact,
    /// The planner's estimate when it expects more than [`ESTIMATE_EXACT_UP_TO`] matches;
    /// otherwise counted exactly, up to that many (an estimate beyond).
    Estimate,
    /// No total.
    None,
}

/// With `count=estimate`, totals up to this are still counted exactly.
pub const ESTIMATE_EXACT_UP_TO: i64 = 10_000;

/// A page of facts with what the extended list reports.
#[derive(Clone, Debug, PartialEq)]
pub struct FactPage {
    /// None with `count=none`.
    pub total: Option<i64>,
    /// True when `total` is the planner's estimate.
    pub total_estimated: bool,
    /// Each fact with its full-text rank when the query searched.
    pub items: Vec<(Fact, Option<f32>)>,
    /// Where the next page starts, when this one was full and ordered by recency.
    pub next_cursor: Option<FactCursor>,
}

/// A tag and how many facts carry it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TagCount {
    /// The tag as stored.
    pub tag: String,
    /// Facts carrying it.
    pub count: i64,
}

/// Which tasks a claim may take, by drift score: `at_least <= drift_score < below`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftRange {
    /// Lowest drift score taken (inclusive).
    pub at_least: f64,
    /// Drift score from which tasks are left to another lane (exclusive).
    pub below: f64,
}

impl DriftRange {
    /// Every task, whatever its drift score.
    pub const ALL: DriftRange = DriftRange {
        at_least: f64::NEG_INFINITY,
        below: f64::INFINITY,
    };
}

/// A request to claim ready tasks for one worker lane.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The claiming process, recorded as each task's `worker_id`.
    pub worker_id: String,
    /// Most tasks to take: the lane's free slots.
    pub limit: i64,
    /// How long each lease lasts unless renewed.
    pub lease: Duration,
    /// The drift scores the lane takes.
    pub drift: DriftRange,
    /// Only tasks of these queues; None takes every queue.
    pub queues: Option<Vec<String>>,
    /// Never tasks of these queues (other lanes serve them).
    pub exclude_queues: Vec<String>,
}

impl Claim {
    /// A claim of up to `limit` tasks of any queue and any drift score.
    pub fn any(worker_id: impl Into<String>, limit: i64, lease: Duration) -> Claim {
        Claim {
            worker_id: worker_id.into(),
            limit,
            lease,
            drift: DriftRange::ALL,
            queues: None,
            exclude_queues: Vec::new(),
        }
    }
}

/// The right to finish one attempt of a task: valid while the token is the task's current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The task the lease is on.
    pub task_id: Uuid,
    /// New with every claim; stale once the task is cancelled, rescued, released or claimed again.
    pub token: Uuid,
}

/// A task a worker claimed, with the lease that lets it finish the attempt.
#[derive(Clone, Debug)]
pub struct ClaimedTask {
    /// The task as claimed: `running`, with this attempt counted.
    pub task: Task,
    /// What finishes, renews or releases the attempt.
    pub lease: Lease,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Success: the result envelope to store.
    Completed(Value),
    /// A retryable failure with attempts left: wait, then run again.
    Retry {
        /// Why the attempt failed; stored as the task's `error`.
        error: String,
        /// When the task may be claimed again.
        run_at: DateTime<Utc>,
    },
    /// A failure that is final.
    Failed(String),
}

/// A hint from the store to the workers of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Some task became ready to claim.
    TasksReady,
    /// This task was cancelled; whoever runs it should stop.
    Cancelled(Uuid),
}

/// Where a store delivers [`Signal`]s.
pub type SignalSink = Arc<dyn Fn(Signal) + Send + Sync>;

/// What `migrate` did.
#[derive(Clone, Debug, Default)]
pub struct MigrationReport {
    /// The migrations this call applied, each as `<version> <description>`.
    pub applied: Vec<String>,
    /// How many migrations had been applied before this call.
    pub already_applied: usize,
}

/// Where tasks, their events, facts and worker processes are kept; the module docs list the
/// invariants every implementation keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and `db init`: "postgres" or "sqlite".
    fn backend(&self) -> &'static str;

    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<MigrationReport>;
    /// Checks that the tables the service needs exist, naming any that is missing.
    async fn verify(&self) -> StoreResult<Vec<String>>;
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;
    /// Starts delivering signals to `sink` until `stop` is cancelled.
    fn watch(&self, sink: SignalSink, stop: CancellationToken) -> JoinHandle<()>;

    // Tasks, for the API.
    /// Stores a new task under a fresh id: `queued` when asked to run immediately, else `created`.
    /// Stores a task. With an idempotency key already in use, returns the task that has it.
    async fn create_task(&self, task: NewTask) -> StoreResult<Task>;
    /// Stores all the tasks in one transaction, or none; keys must not be in use.
    async fn create_tasks(&self, tasks: Vec<NewTask>) -> StoreResult<Vec<Task>>;
    /// Every queue that has tasks or was paused, with its tasks by status.
    async fn list_queues(&self) -> StoreResult<Vec<QueueInfo>>;
    /// Pauses or resumes a queue (it need not have tasks yet).
    async fn set_queue_paused(&self, name: &str, paused: bool) -> StoreResult<QueueInfo>;
    /// The one task id the reference names (NotFound, AmbiguousPrefix otherwise).
    async fn resolve_task(&self, id: &IdRef) -> StoreResult<Uuid>;
    /// The task with this id (NotFound otherwise).
    async fn get_task(&self, id: Uuid) -> StoreResult<Task>;
    /// The tasks matching the query, newest first.
    async fn list_tasks(&self, query: &TaskQuery) -> StoreResult<Page<Task>>;
    /// Queues a `created`, `failed` or `cancelled` task; returns any other task unchanged.
    async fn run_task(&self, id: Uuid) -> StoreResult<Task>;
    /// Cancels a task that is not finished; returns a finished one unchanged.
    async fn cancel_task(&self, id: Uuid) -> StoreResult<Task>;
    /// The task's audit trail, oldest first.
    async fn task_events(&self, id: Uuid) -> StoreResult<Vec<TaskEvent>>;
    /// The tasks with these ids that exist, in no particular order.
    async fn get_tasks(&self, ids: &[Uuid]) -> StoreResult<Vec<Task>>;

    // Workflows.
    /// Stores the workflow and all its tasks in one transaction: roots queued, the rest blocked.
    async fn create_workflow(&self, plan: WorkflowPlan) -> StoreResult<Workflow>;
    /// The workflow with its tasks (NotFound otherwise).
    async fn get_workflow(&self, id: Uuid) -> StoreResult<Workflow>;
    /// Workflows, newest first, each with its tasks counted per status.
    async fn list_workflows(&self, limit: i64, offset: i64) -> StoreResult<Page<WorkflowSummary>>;
    /// Cancels every unfinished task of the workflow and returns it.
    async fn cancel_workflow(&self, id: Uuid) -> StoreResult<Workflow>;

    // Tasks, for the workers.
    /// Claims up to `claim.limit` tasks that are due (`queued` or `retry`, `run_at` passed) and in
    /// the drift range, earliest `run_at` first, skipping rows other workers are claiming.
    async fn claim_tasks(&self, claim: &Claim) -> StoreResult<Vec<ClaimedTask>>;
    /// Records how attempts ended, in one transaction; returns the leases that were still
    /// current (the others' outcomes were dropped).
    async fn finish_attempts(&self, batch: &[(Lease, Outcome)]) -> StoreResult<Vec<Lease>>;
    /// Records how one attempt ended; false when the lease was no longer current.
    async fn finish_attempt(&self, lease: Lease, outcome: Outcome) -> StoreResult<bool> {
        Ok(!self.finish_attempts(&[(lease, outcome)]).await?.is_empty())
    }
    /// Extends the leases still current and returns them; the rest were lost.
    async fn renew_leases(&self, leases: &[Lease], lease: Duration) -> StoreResult<Vec<Lease>>;
    /// Puts tasks whose attempt was interrupted on purpose back in the queue, the attempt
    /// uncounted. Returns how many were still held.
    async fn release(&self, leases: &[Lease]) -> StoreResult<u64>;
    /// Requeues (or fails, when out of attempts) running tasks whose lease expired.
    async fn rescue_expired(&self) -> StoreResult<u64>;

    // Worker processes.
    /// Records a worker process as started (or restarted under the same id).
    async fn register_worker(&self, worker: &Worker) -> StoreResult<()>;
    /// Marks the worker as seen now.
    async fn worker_seen(&self, id: &str) -> StoreResult<()>;
    /// Marks the worker as stopped gracefully.
    async fn worker_stopped(&self, id: &str) -> StoreResult<()>;
    /// Registered workers, newest first; stopped ones older than a day are forgotten.
    async fn list_workers(&self) -> StoreResult<Vec<Worker>>;

    // Import of existing data (ids and times kept; ids already stored are left alone).
    /// Inserts the facts not stored yet, in one transaction; returns how many were new.
    async fn import_facts(&self, facts: &[Fact]) -> StoreResult<u64>;
    /// Inserts the tasks not stored yet, in one transaction; returns how many were new.
    async fn import_tasks(&self, tasks: &[LegacyTask]) -> StoreResult<u64>;
    /// Which of `ids` are stored already as records of `kind`.
    async fn stored_ids(&self, kind: RecordKind, ids: &[Uuid]) -> StoreResult<Vec<Uuid>>;

    // Facts.
    /// Stores a new fact under a fresh id.
    async fn create_fact(&self, fact: NewFact) -> StoreResult<Fact>;
    /// The one fact id the reference names (NotFound, AmbiguousPrefix otherwise).
    async fn resolve_fact(&self, id: &IdRef) -> StoreResult<Uuid>;
    /// The fact with this id (NotFound otherwise).
    async fn get_fact(&self, id: Uuid) -> StoreResult<Fact>;
    /// The facts matching the query, newest first, with the number of matches.
    async fn list_facts(&self, query: &FactQuery) -> StoreResult<Page<Fact>>;
    /// The fact list with every filter of [`FactQuery`]. A backend that has only `list_facts`
    /// answers the original service's queries and refuses the rest as unsupported.
    async fn search_facts(&self, query: &FactQuery) -> StoreResult<FactPage> {
        if query.is_extended() {
            return Err(StoreError::Unsupported(format!(
                "the {} store does not support this fact query yet",
                self.backend()
            )));
        }
        let page = self.list_facts(query).await?;
        Ok(FactPage {
            total: Some(page.total),
            total_estimated: false,
            items: page.items.into_iter().map(|fact| (fact, None)).collect(),
            next_cursor: None,
        })
    }
    /// Creates all the facts or none.
    async fn create_facts(&self, facts: Vec<NewFact>) -> StoreResult<Vec<Fact>> {
        let _ = facts;
        Err(StoreError::Unsupported(format!(
            "the {} store does not support bulk creation yet",
            self.backend()
        )))
    }
    /// Builds full-text search vectors in `language`; true when that changed anything.
    async fn set_search_language(&self, language: &str) -> StoreResult<bool> {
        if language == "english" {
            return Ok(false);
        }
        Err(StoreError::Unsupported(format!(
            "the {} store searches facts in English only, not '{language}'",
            self.backend()
        )))
    }
    /// Tags with the number of facts carrying each, most used first.
    async fn tag_counts(&self, prefix: Option<&str>, limit: i64) -> StoreResult<Vec<TagCount>> {
        let _ = (prefix, limit);
        Err(StoreError::Unsupported(format!(
            "the {} store does not count tags yet",
            self.backend()
        )))
    }
    /// Deletes up to `limit` tasks that finished (completed, failed, cancelled) before `cutoff`,
    /// oldest first, with their events; a task some blocked task still waits on is kept.
    /// Returns how many were deleted.
    async fn prune_finished(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64>;
    /// Moves up to `limit` tasks that finished before `cutoff` out of the table claims and
    /// completions change into the history, where every read still finds them; a task some
    /// blocked task waits on stays. Returns how many moved. Stores that keep every task in one
    /// table have nothing to move.
    async fn archive_finished(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        let _ = (cutoff, limit);
        Ok(0)
    }
    /// Folds the counter deltas written since the last fold into the counters that answer
    /// totals; returns how many counters changed. Stores that count rows when asked have
    /// nothing to fold.
    async fn fold_counters(&self) -> StoreResult<u64> {
        Ok(0)
    }
    /// Applies the patch and refreshes `updated_at`; an empty patch returns the fact unchanged.
    async fn update_fact(&self, id: Uuid, patch: FactPatch) -> StoreResult<Fact>;
    /// Deletes the fact (NotFound when there is none).
    async fn delete_fact(&self, id: Uuid) -> StoreResult<()>;

    // Cron schedules (see `model::schedule` for when they fire).
    /// Stores a new schedule under a fresh id; its first fire is the first after now. A name in
    /// use is `Conflict`; an expression or zone that does not read is `Unsupported`.
    async fn create_schedule(&self, schedule: NewSchedule) -> StoreResult<Schedule>;
    /// The schedule with this id (NotFound otherwise).
    async fn get_schedule(&self, id: Uuid) -> StoreResult<Schedule>;
    /// Schedules by name, with the number of schedules.
    async fn list_schedules(&self, limit: i64, offset: i64) -> StoreResult<Page<Schedule>>;
    /// Applies the patch as [`Schedule::apply`] does, in one transaction; errors as for create.
    async fn update_schedule(&self, id: Uuid, patch: SchedulePatch) -> StoreResult<Schedule>;
    /// Deletes the schedule (NotFound when there is none); the tasks it created stay.
    async fn delete_schedule(&self, id: Uuid) -> StoreResult<()>;
    /// In one transaction: takes up to `limit` due enabled schedules that no other process is
    /// firing, creates the tasks of their fires (queued, keyed by fire time, a key in use
    /// creating nothing), and moves each schedule to its next fire. Announces the new tasks.
    async fn fire_due_schedules(&self, limit: i64) -> StoreResult<Firing>;
}

/// Opens the store a URL names (`postgresql://…` or `sqlite:///path/file.db`), for programs
/// that embed seedcore. PostgreSQL gets a pool of `pool_size` connections; a SQLite file and its
/// folder are created if missing. Call [`Store::migrate`] before use.
pub async fn open(url: &str, pool_size: u32) -> Result<DynStore, OpenError> {
    match crate::config::DatabaseTarget::from_url(url).map_err(|e| OpenError::Url(e.0))? {
        crate::config::DatabaseTarget::Postgres(options) => {
            let store = PgStore::connect(*options, pool_size, Duration::from_secs(30)).await?;
            Ok(Arc::new(store))
        }
        crate::config::DatabaseTarget::Sqlite(path) => {
            if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder).map_err(|e| OpenError::Url(e.to_string()))?;
            }
            Ok(Arc::new(SqliteStore::open(&path).await?))
        }
    }
}

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not usable, or the SQLite file's folder cannot be created.
    #[error("{0}")]
    Url(String),
    /// The database could not be reached or opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Queue views from `(queue, status, count)` rows and `(queue, paused)` rows, by name.
fn queue_infos(counts: Vec<(String, String, i64)>, paused: Vec<(String, bool)>) -> Vec<QueueInfo> {
    let mut queues: std::collections::BTreeMap<String, QueueInfo> = Default::default();
    for (name, status, count) in counts {
        queues
            .entry(name.clone())
            .or_insert_with(|| QueueInfo {
                name,
                paused: false,
                counts: Default::default(),
            })
            .counts
            .insert(status, count);
    }
    for (name, is_paused) in paused {
        queues
            .entry(name.clone())
            .or_insert_with(|| QueueInfo {
                name,
                paused: false,
                counts: Default::default(),
            })
            .paused = is_paused;
    }
    queues.into_values().collect()
}

/// The status (and error) each new task starts with, in order. A task's parents are either
/// `existing` (their current statuses, read under lock) or earlier tasks of the same batch.
fn starts(
    tasks: &[NewTask],
    existing: &std::collections::HashMap<Uuid, TaskStatus>,
) -> StoreResult<Vec<(TaskStatus, Option<String>)>> {
    let mut known = existing.clone();
    let mut missing = Vec::new();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let parents: Vec<(Uuid, TaskStatus)> = task
            .depends_on
            .iter()
            .filter_map(|id| match known.get(id) {
                Some(status) => Some((*id, *status)),
                None => {
                    missing.push(*id);
                    None
                }
            })
            .collect();
        let start = task.start(&parents);
        known.insert(task.id, start.0);
        out.push(start);
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(StoreError::UnknownDependencies(missing));
    }
    Ok(out)
}

/// Every parent named by the tasks, once.
fn parents_of(tasks: &[NewTask]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = tasks
        .iter()
        .flat_map(|t| t.depends_on.iter().copied())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Tasks or facts, for operations that apply to either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// Rows of the `tasks` table.
    Task,
    /// Rows of the `facts` table.
    Fact,
}

/// Escapes `%`, `_` and `\` so that a LIKE pattern matches the text literally.
pub fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_and_the_escape_character_are_escaped() {
        assert_eq!(like_literal(r"50%_off\now"), r"50\%\_off\\now");
        assert_eq!(like_literal("plain"), "plain");
    }
}
