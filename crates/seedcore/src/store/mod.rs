//! Storage: one trait, implemented per backend; everything else talks to `dyn Store`.
//!
//! Invariants every implementation keeps:
//! - every method is one short transaction (none is held across a handler's execution);
//! - a claim marks tasks `running`, counts the attempt and hands out a fresh lease token;
//!   it never leaves more of a queue's tasks `running` than the queue's concurrency limit,
//!   whichever processes claim at the same time;
//!   completion, failure, heartbeat and release apply only while that token is current, so a
//!   worker that lost its lease (cancelled, rescued, released) changes nothing;
//! - every status change is appended to the task's event trail in the same transaction;
//! - a task becoming ready (queued or retry) and a running task being cancelled are signalled
//!   to every process watching the store, as a hint: polling remains the guarantee.
//!
//! Layout: the trait and the types it speaks in live here and in the shared modules beside it
//! (queries, leases, rows, errors, schedule plans); each backend has the same modules
//! (`tasks`, `task_filters`, `claims`, `workflows`, `facts`, `fact_search`, `counting`, `queues`,
//! `workers`, `schedules`, `import`, `retention`, `schema`, `rows`, `errors`, `signals`) with its
//! SQL in its own `sql/` folder, and `forward` writes their `impl Store` once for both.

pub mod actions;
mod coalesce;
mod error;
pub mod events;
mod forward;
mod ids;
mod leases;
mod migrations;
mod open;
mod parents;
pub mod postgres;
mod query;
mod queues;
mod rows;
pub mod schedules;
pub mod sqlite;
pub mod stats;
mod target;
mod task_filter;
mod tokens;
mod watchers;

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::{ApiToken, NewToken, StoredToken};
use crate::legacy::LegacyTask;
use crate::model::{
    Actor, Fact, FactPatch, IdRef, NewFact, NewTask, QueueInfo, Task, TaskEvent, Worker, Workflow,
    WorkflowPlan, WorkflowSummary,
};
use crate::model::{NewSchedule, Schedule, SchedulePatch};
use crate::model::{PullWorker, TaskStatus, WorkerCommand};

pub use actions::{ActionFilter, ActionKind, ActionState, NewAction, TaskAction};
pub use error::{Cause, StoreError, StoreResult};
pub use events::{EVENT_PAGE, TaskChange};
pub use leases::{
    Claim, ClaimedTask, DriftRange, Lease, LocalStarter, Outcome, Rescued, StartSlot,
};
pub use migrations::MigrationReport;
pub use open::{OpenError, open, open_target};
pub use postgres::PgStore;
pub use query::{
    CountMode, ESTIMATE_EXACT_UP_TO, FactPage, FactQuery, MetaFilter, Page, RecordKind, TagCount,
    TaskPage, TaskQuery, TaskSort, like_literal,
};
pub use schedules::{FIRE_BATCH, FIRE_HISTORY, FiredTask, Firing, MissedFires, ScheduleFire};
pub use sqlite::SqliteStore;
pub use stats::{StatsQuery, TaskStats};
pub use target::{DatabaseTarget, PgTls, SSL_MODES, TargetError, parse_ssl_mode};
pub use task_filter::{ParamFilter, TaskFilter};
pub use watchers::{Signal, SignalSink};

/// One database connection pool of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Which pool: `main` on PostgreSQL, `writer` or `reader` on SQLite.
    pub name: &'static str,
    /// Connections open now, idle or in use.
    pub size: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// Most connections the pool opens.
    pub max: u32,
}

impl PoolStats {
    /// The stats of `pool`, under `name`.
    pub fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolStats {
        PoolStats {
            name,
            size: pool.size(),
            idle: pool.num_idle() as u32,
            max: pool.options().get_max_connections(),
        }
    }
}

/// A shared handle to whichever store the process was configured with.
pub type DynStore = Arc<dyn Store>;

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
    /// Offers this process's worker to take ready tasks at their creation (see
    /// [`LocalStarter`]); the store keeps only a weak reference, and the latest offer. A
    /// backend that cannot write a task as claimed ignores it.
    fn start_here(&self, _starter: std::sync::Weak<dyn LocalStarter>) {}
    /// Lets go of the database once the statements in flight are done, leaving it whole on
    /// its own (SQLite folds its write-ahead log into the file, so a copy of the file alone is
    /// a backup). Call it when the process is done with the store.
    async fn close(&self);
    /// Writes a consistent copy of the database to the new file `target` while the store stays
    /// in use; `Unsupported`, saying what to use instead, where the database has its own tools.
    async fn backup(&self, target: &Path) -> StoreResult<()>;

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
    /// Sets or clears (None) a queue's concurrency limit (it need not have tasks yet): from
    /// then on no claim, in any process, leaves more of its tasks running than the limit.
    async fn set_queue_concurrency(
        &self,
        name: &str,
        concurrency: Option<i32>,
    ) -> StoreResult<QueueInfo>;
    /// For each of `queues`, when its oldest ready task (queued or retry, and due) became due;
    /// queues without one are left out. One index descent per queue, whatever the backlog.
    async fn oldest_ready(&self, queues: &[String]) -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// This process's database connection pools, as they are now.
    fn pool_stats(&self) -> Vec<PoolStats> {
        Vec::new()
    }
    /// The one task id the reference names (NotFound, AmbiguousPrefix otherwise).
    async fn resolve_task(&self, id: &IdRef) -> StoreResult<Uuid>;
    /// The task with this id (NotFound otherwise).
    async fn get_task(&self, id: Uuid) -> StoreResult<Task>;
    /// The tasks matching the query in its order, with their total as it asks.
    async fn list_tasks(&self, query: &TaskQuery) -> StoreResult<TaskPage>;
    /// Queues a `created`, `failed` or `cancelled` task; returns any other task unchanged.
    async fn run_task(&self, id: Uuid, actor: &Actor) -> StoreResult<Task>;
    /// Cancels a task that is not finished; returns a finished one unchanged.
    async fn cancel_task(&self, id: Uuid, actor: &Actor) -> StoreResult<Task>;
    /// The task's audit trail, oldest first.
    async fn task_events(&self, id: Uuid) -> StoreResult<Vec<TaskEvent>>;
    /// The tasks with these ids that exist, in no particular order.
    async fn get_tasks(&self, ids: &[Uuid]) -> StoreResult<Vec<Task>>;
    /// The tasks that finished in the query's window (wherever they are kept), counted per
    /// bucket with their run and waiting time percentiles; see `stats` for the rules.
    async fn task_stats(&self, query: &StatsQuery) -> StoreResult<TaskStats>;

    // Workflows.
    /// Stores the workflow and all its tasks in one transaction: roots queued, the rest blocked.
    async fn create_workflow(&self, plan: WorkflowPlan) -> StoreResult<Workflow>;
    /// The workflow with its tasks (NotFound otherwise).
    async fn get_workflow(&self, id: Uuid) -> StoreResult<Workflow>;
    /// Workflows, newest first, each with its tasks counted per status.
    async fn list_workflows(&self, limit: i64, offset: i64) -> StoreResult<Page<WorkflowSummary>>;
    /// Cancels every unfinished task of the workflow and returns it.
    async fn cancel_workflow(&self, id: Uuid, actor: &Actor) -> StoreResult<Workflow>;

    // Tasks, for the workers.
    /// Claims up to `claim.limit` tasks that are due (`queued` or `retry`, `run_at` passed) and in
    /// the drift range, earliest `run_at` first, skipping rows other workers are claiming, and
    /// no more of a limited queue's tasks than its limit leaves beside those running.
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
    /// Extends one lease, as `renew_leases` does, and records in the same write how far along
    /// its attempt is (0 to 1), shown as the task's `progress` until its next attempt starts;
    /// false when the lease is no longer current (nothing is written then).
    async fn renew_reporting(
        &self,
        lease: Lease,
        duration: Duration,
        progress: f64,
    ) -> StoreResult<bool>;
    /// Puts tasks whose attempt was interrupted on purpose back in the queue, the attempt
    /// uncounted. Returns how many were still held.
    async fn release(&self, leases: &[Lease]) -> StoreResult<u64>;
    /// Requeues (or fails, when out of attempts) running tasks whose lease expired.
    async fn rescue_expired(&self) -> StoreResult<u64> {
        Ok(self.rescue_expired_tasks().await?.len() as u64)
    }
    /// Does what [`Store::rescue_expired`] does and says which tasks it took back.
    async fn rescue_expired_tasks(&self) -> StoreResult<Vec<Rescued>>;

    // Worker processes.
    /// Records a worker process as started (or restarted under the same id).
    async fn register_worker(&self, worker: &Worker) -> StoreResult<()>;
    /// Marks the worker as seen now.
    async fn worker_seen(&self, id: &str) -> StoreResult<()>;
    /// Marks the worker as stopped gracefully.
    async fn worker_stopped(&self, id: &str) -> StoreResult<()>;
    /// Registered workers, newest first; stopped ones older than a day are forgotten.
    async fn list_workers(&self) -> StoreResult<Vec<Worker>>;

    // Workers that claim over HTTP (the pull API).
    /// Records a pull worker: its `workers` row and what it registered, in one transaction.
    async fn register_pull_worker(&self, worker: &Worker, pull: &PullWorker) -> StoreResult<()>;
    /// The pull worker with this id (NotFound otherwise, as for a forgotten one).
    async fn pull_worker(&self, id: &str) -> StoreResult<PullWorker>;
    /// Marks the pull worker as seen now and returns the state its operator set (NotFound for
    /// an unknown id); forgets the finished leases a day old on the way.
    async fn pull_worker_seen(&self, id: &str) -> StoreResult<WorkerCommand>;
    /// Sets what the operator asks of the pull worker and returns it (NotFound otherwise).
    async fn set_pull_worker_state(
        &self,
        id: &str,
        state: WorkerCommand,
    ) -> StoreResult<PullWorker>;
    /// Records how each attempt ended, as `finish_attempt` does, and in the same transaction
    /// remembers that its lease finished it, and as what; returns the leases that were
    /// current (and so recorded). One transaction for the batch: one outcome the database
    /// refuses fails them all.
    async fn finish_remembered(&self, batch: &[(Lease, Outcome)]) -> StoreResult<Vec<Lease>>;
    /// What the lease finished its task as (completed, retry or failed), if it finished it
    /// through `finish_remembered` within the last day.
    async fn finished_lease(&self, lease: Lease) -> StoreResult<Option<TaskStatus>>;
    /// How many tasks the worker runs now in each of `queues` (queues it runs none in are
    /// left out).
    async fn running_by_queue(
        &self,
        worker_id: &str,
        queues: &[String],
    ) -> StoreResult<Vec<(String, i64)>>;

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
    /// In one transaction: creates the schedule's task now (paused or not; queued, under a key
    /// of its own, acted by `actor`) and records it as a manual fire, without moving the
    /// schedule's next fire. NotFound when there is no such schedule.
    async fn trigger_schedule(&self, id: Uuid, actor: Actor) -> StoreResult<Task>;
    /// The schedule's newest `limit` fires (the history keeps [`FIRE_HISTORY`]), newest first,
    /// each with its task's current state. NotFound when there is no such schedule.
    async fn schedule_fires(&self, id: Uuid, limit: i64) -> StoreResult<Vec<ScheduleFire>>;

    // API tokens (see `auth::token`: only a hash of each token is stored).
    /// Stores a new token; a name in use is `Conflict`.
    async fn create_token(&self, token: NewToken) -> StoreResult<ApiToken>;
    /// Every token ever made, revoked ones included, oldest first.
    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>>;
    /// The token with this public id and the hash to check it against.
    async fn find_token(&self, id: &str) -> StoreResult<Option<StoredToken>>;
    /// Revokes the token with this public id, else with this name (NotFound otherwise);
    /// revoking twice keeps the first time.
    async fn revoke_token(&self, id_or_name: &str) -> StoreResult<ApiToken>;
    /// Records that the token was used now.
    async fn touch_token(&self, id: &str) -> StoreResult<()>;
    /// Whether any token was ever made (revoked ones count: once there were tokens, the API
    /// keeps asking for one).
    async fn any_tokens(&self) -> StoreResult<bool>;

    // The audit trail as a stream (see `events`).
    /// Up to `limit` events after `after`, oldest first, each with its task's queue, type and
    /// workflow (null when the task is gone).
    async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<TaskChange>>;
    /// The `seq` of the latest event written, 0 when there is none.
    async fn last_event_seq(&self) -> StoreResult<i64>;
    /// Deletes a finished task with its events: NotFound when there is none, Conflict when it
    /// has not finished or a blocked task still waits on it.
    async fn delete_task(&self, id: Uuid) -> StoreResult<()>;

    // Bulk actions (see `actions` for the rules every batch keeps).
    /// Stores a new running action, held by `owner` for `lease`, bounded by the current time.
    async fn create_action(
        &self,
        action: NewAction,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<TaskAction>;
    /// The action with this id (NotFound otherwise).
    async fn get_action(&self, id: Uuid) -> StoreResult<TaskAction>;
    /// The latest actions, newest first.
    async fn list_actions(&self, limit: i64) -> StoreResult<Vec<TaskAction>>;
    /// Takes over one running action whose lease expired (its process stopped), if any.
    async fn adopt_action(&self, owner: &str, lease: Duration) -> StoreResult<Option<TaskAction>>;
    /// Applies the next batch of up to `batch` tasks of the action held by `owner`, with its
    /// progress, in one transaction, and renews the lease; `None` when `owner` no longer
    /// holds it (nothing changed). The action is completed by the batch that finds fewer.
    async fn action_batch(
        &self,
        id: Uuid,
        owner: &str,
        lease: Duration,
        batch: i64,
    ) -> StoreResult<Option<TaskAction>>;
    /// Marks the action held by `owner` failed, with the reason.
    async fn fail_action(&self, id: Uuid, owner: &str, error: &str) -> StoreResult<()>;
}
