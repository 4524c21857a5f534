//! The SQLite store: the embedded default, one file for one process.
//!
//! Invariants it keeps beside those of [`Store`]:
//! - writes go through a pool of one connection, so they queue in order inside the process
//!   instead of sleeping in SQLite's busy handler; reads use a small pool of their own and run
//!   in parallel under WAL. A write that takes several statements is one `begin immediate`
//!   transaction; a single `update … returning` is atomic by itself;
//! - a claim is one statement under SQLite's single writer, so no task is claimed twice;
//!   every write that finishes an attempt is fenced by `id`, `lease_token` and `running`;
//! - ids are stored as canonical lowercase hyphenated text and timestamps as fixed-width UTC
//!   text from this process's clock ([`TIME_FORMAT`]), so text order is id order and time
//!   order; JSON is stored as serde_json's text;
//! - the event trail is written by row-level triggers (see the migrations); wake-ups have no
//!   NOTIFY here: the store signals the watchers registered in this process after each write
//!   that made a task ready or cancelled a running one (or, once tasks with parents exist,
//!   that finished a task: its children may have been queued by the settle trigger, which
//!   needs recursive triggers, turned on for every connection);
//! - what PostgreSQL's jsonb refuses (a NUL character) is refused here too, so that both
//!   backends store the same things.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::{
    QueryBuilder, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod facts;
mod fts;
mod import;
mod schedules;
mod tasks_new;
mod workflows;

use super::watchers::Watchers;

use super::{
    Claim, ClaimedTask, FactPage, FactQuery, Lease, MigrationReport, Outcome, Page, RecordKind,
    Signal, SignalSink, Store, StoreError, StoreResult, TagCount, TaskQuery,
};
use crate::legacy::LegacyTask;
use crate::model::transition::{Event, PARENT_DONE, PARENT_DONE_ON_FAILURE, names, transition};
use crate::model::{
    Fact, FactPatch, IdRef, NewFact, NewTask, QueueInfo, Task, TaskEvent, TaskStatus, Worker,
    Workflow, WorkflowPlan, WorkflowSummary,
};
use crate::model::{NewSchedule, Schedule, SchedulePatch};
use crate::store::Firing;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Workflows created before ?1 whose tasks were all pruned.
const EMPTY_WORKFLOWS: &str = "delete from workflows where created_at < ?1 \
     and not exists (select 1 from tasks where tasks.workflow_id = workflows.id)";

/// Tables `verify` expects after migration.
const TABLES: [&str; 6] = [
    "tasks",
    "task_events",
    "facts",
    "workers",
    "workflows",
    "schedules",
];

/// How timestamps are stored: UTC, microseconds, always the same width (years 0–9999).
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// How long a statement waits for another process (say `db init`) to release the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a connection before it fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections that read in parallel.
const READERS: u32 = 4;

/// The embedded store: one SQLite file, written through a single connection and read through
/// a few more; clones share them.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    /// The only connection that writes.
    writer: SqlitePool,
    reader: SqlitePool,
    watchers: Arc<Watchers>,
    /// Set once tasks with parents may exist: from then on a finished task may have queued
    /// children, so finishing one wakes the workers.
    dependents: Arc<AtomicBool>,
}

impl SqliteStore {
    /// Wakes the workers for new tasks that are ready, and notes tasks that wait for parents.
    fn created(&self, tasks: &[Task]) {
        if tasks.iter().any(|t| !t.depends_on.is_empty()) {
            self.dependents.store(true, Ordering::Relaxed);
        }
        if tasks.iter().any(|t| t.status == TaskStatus::Queued) {
            self.watchers.send(Signal::TasksReady);
        }
    }

    /// After tasks reached a final status: their children may be ready now.
    fn settled(&self) {
        if self.dependents.load(Ordering::Relaxed) {
            self.watchers.send(Signal::TasksReady);
        }
    }

    /// Opens (creating it if missing) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // A child cancelled by the settle trigger settles its own children in turn.
            .pragma("recursive_triggers", "on");
        // The writer first: it creates the file and switches it to WAL before any reader opens.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            reader,
            watchers: Arc::default(),
            dependents: Arc::default(),
        })
    }

    /// Writes a consistent copy of the database to `target` (which must not exist), while
    /// the store stays in use: `vacuum into` reads one snapshot, as any reader does under WAL,
    /// so writers are not held up.
    pub async fn backup_to(&self, target: &Path) -> StoreResult<()> {
        let target = target.to_str().ok_or_else(|| {
            StoreError::Unsupported(format!("{} is not a UTF-8 path", target.display()))
        })?;
        sqlx::query("vacuum into ?1")
            .bind(target)
            .execute(&self.reader)
            .await?;
        Ok(())
    }

    /// Closes both pools once their statements in flight are done. The last connection to
    /// close folds the write-ahead log into the database file and removes it.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writing connection's pool, for tools and tests that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    async fn resolve(&self, id: &IdRef, by_range: &'static str) -> StoreResult<Uuid> {
        let (low, high) = match id {
            IdRef::Exact(id) => return Ok(*id),
            IdRef::Prefix { range: None, .. } => return Err(StoreError::NotFound),
            IdRef::Prefix {
                range: Some(range), ..
            } => *range,
        };
        let ids: Vec<String> = sqlx::query_scalar(by_range)
            .bind(low.to_string())
            .bind(high.to_string())
            .fetch_all(&self.reader)
            .await?;
        match ids.as_slice() {
            [] => Err(StoreError::NotFound),
            [one] => parse_id(one),
            _ => Err(StoreError::AmbiguousPrefix(id.as_sent())),
        }
    }

    async fn task_row(&self, id: Uuid) -> StoreResult<Option<TaskRow>> {
        Ok(sqlx::query_as("select * from tasks where id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?)
    }

    async fn has_table(&self, name: &str) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("select 1 from sqlite_master where type = 'table' and name = ?1")
                .bind(name)
                .fetch_optional(&self.writer)
                .await?;
        Ok(found.is_some())
    }

    /// Applies `statement` to each lease in one transaction, bound to `value`, the task id and
    /// the lease token; returns the leases whose row it changed (the rest were lost).
    async fn fenced(
        &self,
        statement: &'static str,
        value: String,
        held: &[Lease],
    ) -> StoreResult<Vec<Lease>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with("begin immediate").await?;
        let mut changed = Vec::with_capacity(held.len());
        for lease in held {
            let done = sqlx::query(statement)
                .bind(&value)
                .bind(lease.task_id.to_string())
                .bind(lease.token.to_string())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() > 0 {
                changed.push(*lease);
            }
        }
        tx.commit().await?;
        Ok(changed)
    }
}

/// A timestamp as stored.
fn stamp(at: DateTime<Utc>) -> String {
    at.format(TIME_FORMAT).to_string()
}

/// `now + span`, saturating far in the future rather than overflowing.
fn after(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|span| now.checked_add_signed(span))
        .unwrap_or_else(|| now + TimeDelta::days(365 * 1000))
}

fn parse_time(text: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| StoreError::Corrupt(format!("timestamp '{text}': {err}")))
}

fn parse_time_opt(text: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_time).transpose()
}

fn parse_id(text: &str) -> StoreResult<Uuid> {
    Uuid::try_parse(text).map_err(|err| StoreError::Corrupt(format!("id '{text}': {err}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("JSON column: {err}")))
}

fn parse_status(text: &str) -> StoreResult<TaskStatus> {
    TaskStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown status '{text}'")))
}

/// A value as JSON text, refused when it holds a NUL character: PostgreSQL's jsonb cannot store
/// one, and a task or fact must not be storable on one backend only.
fn json_text(value: &impl Serialize) -> StoreResult<String> {
    let text = serde_json::to_string(value)
        .map_err(|err| StoreError::Database(sqlx::Error::Encode(err.into())))?;
    if escapes_nul(&text) {
        return Err(StoreError::Database(sqlx::Error::Encode(
            "JSON holding a NUL character (\\u0000) cannot be stored".into(),
        )));
    }
    Ok(text)
}

/// Whether serde_json's output holds an escaped NUL (`\u0000`). Each escape is skipped whole,
/// so an escaped backslash followed by the text `u0000` is not mistaken for one.
fn escapes_nul(json: &str) -> bool {
    let mut rest = json;
    while let Some(at) = rest.find('\\') {
        let escape = &rest[at + 1..];
        if escape.starts_with("u0000") {
            return true;
        }
        // The escaped character is ASCII (serde_json escapes only `"`, `\` and controls).
        rest = escape.get(1..).unwrap_or("");
    }
    false
}

/// A `tasks` row as read from SQLite.
#[derive(sqlx::FromRow)]
struct TaskRow {
    id: String,
    #[sqlx(rename = "type")]
    task_type: String,
    description: String,
    params: String,
    domain: Option<String>,
    drift_score: f64,
    status: String,
    result: Option<String>,
    error: Option<String>,
    created_at: String,
    updated_at: String,
    attempts: i32,
    max_attempts: i32,
    timeout_seconds: Option<f64>,
    run_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    worker_id: Option<String>,
    lease_token: Option<String>,
    attached_fact_ids: String,
    queue: String,
    priority: i32,
    idempotency_key: Option<String>,
    depends_on: String,
    run_on_failure: bool,
    workflow_id: Option<String>,
    workflow_key: Option<String>,
}

impl TaskRow {
    fn into_task(self) -> StoreResult<Task> {
        Ok(Task {
            id: parse_id(&self.id)?,
            task_type: self.task_type,
            description: self.description,
            params: parse_json(&self.params)?,
            domain: self.domain,
            drift_score: self.drift_score,
            status: parse_status(&self.status)?,
            result: self.result.as_deref().map(parse_json).transpose()?,
            error: self.error,
            created_at: parse_time(&self.created_at)?,
            updated_at: parse_time(&self.updated_at)?,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            timeout_seconds: self.timeout_seconds,
            run_at: parse_time(&self.run_at)?,
            started_at: parse_time_opt(self.started_at)?,
            finished_at: parse_time_opt(self.finished_at)?,
            worker_id: self.worker_id,
            attached_fact_ids: parse_json(&self.attached_fact_ids)?,
            queue: self.queue,
            priority: self.priority,
            idempotency_key: self.idempotency_key,
            depends_on: parse_json(&self.depends_on)?,
            run_on_failure: self.run_on_failure,
            workflow_id: self.workflow_id.as_deref().map(parse_id).transpose()?,
            workflow_key: self.workflow_key,
        })
    }

    fn into_claimed(mut self) -> StoreResult<ClaimedTask> {
        let token = self
            .lease_token
            .take()
            .ok_or_else(|| StoreError::Corrupt("claimed task without a lease token".into()))?;
        let token = parse_id(&token)?;
        let task = self.into_task()?;
        Ok(ClaimedTask {
            lease: Lease {
                task_id: task.id,
                token,
            },
            task,
        })
    }
}

fn tasks(rows: Vec<TaskRow>) -> StoreResult<Vec<Task>> {
    rows.into_iter().map(TaskRow::into_task).collect()
}

#[derive(sqlx::FromRow)]
struct FactRow {
    id: String,
    text: String,
    tags: String,
    meta_data: String,
    created_at: String,
    updated_at: String,
}

impl FactRow {
    fn into_fact(self) -> StoreResult<Fact> {
        Ok(Fact {
            id: parse_id(&self.id)?,
            text: self.text,
            tags: parse_json(&self.tags)?,
            meta_data: parse_json(&self.meta_data)?,
            created_at: parse_time(&self.created_at)?,
            updated_at: parse_time(&self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct WorkerRow {
    id: String,
    host: String,
    pid: i32,
    version: String,
    concurrency: i32,
    escalated_concurrency: i32,
    lease_seconds: f64,
    started_at: String,
    last_seen_at: String,
    stopped_at: Option<String>,
}

impl WorkerRow {
    fn into_worker(self) -> StoreResult<Worker> {
        Ok(Worker {
            id: self.id,
            host: self.host,
            pid: self.pid,
            version: self.version,
            concurrency: self.concurrency,
            escalated_concurrency: self.escalated_concurrency,
            lease_seconds: self.lease_seconds,
            started_at: parse_time(&self.started_at)?,
            last_seen_at: parse_time(&self.last_seen_at)?,
            stopped_at: parse_time_opt(self.stopped_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    task_id: String,
    at: String,
    kind: String,
    from_status: Option<String>,
    to_status: String,
    attempt: i32,
    worker_id: Option<String>,
    error: Option<String>,
}

impl EventRow {
    fn into_event(self) -> StoreResult<TaskEvent> {
        Ok(TaskEvent {
            seq: self.seq,
            task_id: parse_id(&self.task_id)?,
            at: parse_time(&self.at)?,
            kind: self.kind,
            from_status: self.from_status.as_deref().map(parse_status).transpose()?,
            to_status: parse_status(&self.to_status)?,
            attempt: self.attempt,
            worker_id: self.worker_id,
            error: self.error,
        })
    }
}

/// One attempt's outcome as the columns `finish.sql` writes.
struct Finish {
    status: &'static str,
    result: Option<String>,
    error: Option<String>,
    run_at: Option<String>,
}

impl Finish {
    fn of(outcome: &Outcome) -> StoreResult<Finish> {
        Ok(match outcome {
            Outcome::Completed(result) => Finish {
                status: "completed",
                result: Some(json_text(result)?),
                error: None,
                run_at: None,
            },
            Outcome::Retry { error, run_at } => Finish {
                status: "retry",
                result: None,
                error: Some(error.clone()),
                run_at: Some(stamp(*run_at)),
            },
            Outcome::Failed(error) => Finish {
                status: "failed",
                result: None,
                error: Some(error.clone()),
                run_at: None,
            },
        })
    }
}

fn task_filters(builder: &mut QueryBuilder<Sqlite>, query: &TaskQuery) {
    builder.push(" where true");
    if let Some(status) = query.status {
        builder.push(" and status = ").push_bind(status.as_str());
    }
    if let Some(task_type) = &query.task_type {
        builder.push(" and type = ").push_bind(task_type.clone());
    }
    if let Some(domain) = &query.domain {
        builder.push(" and domain = ").push_bind(domain.clone());
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<MigrationReport> {
        let before: Vec<i64> = if self.has_table("_sqlx_migrations").await? {
            sqlx::query_scalar("select version from _sqlx_migrations where success")
                .fetch_all(&self.writer)
                .await?
        } else {
            Vec::new()
        };
        MIGRATOR.run(&self.writer).await?;
        let waiting: bool =
            sqlx::query_scalar("select exists (select 1 from tasks where status = 'blocked')")
                .fetch_one(&self.writer)
                .await?;
        self.dependents.fetch_or(waiting, Ordering::Relaxed);
        let applied = MIGRATOR
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        Ok(MigrationReport {
            applied,
            already_applied: before.len(),
        })
    }

    async fn verify(&self) -> StoreResult<Vec<String>> {
        let present: Vec<String> =
            sqlx::query_scalar("select name from sqlite_master where type = 'table'")
                .fetch_all(&self.reader)
                .await?;
        Ok(TABLES
            .iter()
            .filter(|t| !present.iter().any(|p| p == *t))
            .map(|t| t.to_string())
            .collect())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.reader).await?;
        Ok(())
    }

    fn watch(&self, sink: SignalSink, stop: CancellationToken) -> JoinHandle<()> {
        let watchers = self.watchers.clone();
        let id = watchers.add(sink);
        tokio::spawn(async move {
            stop.cancelled().await;
            watchers.remove(id);
        })
    }

    async fn create_task(&self, task: NewTask) -> StoreResult<Task> {
        tasks_new::create_one(self, task).await
    }

    async fn create_tasks(&self, tasks: Vec<NewTask>) -> StoreResult<Vec<Task>> {
        tasks_new::create_many(self, tasks).await
    }

    async fn list_queues(&self) -> StoreResult<Vec<QueueInfo>> {
        tasks_new::list_queues(self).await
    }

    async fn set_queue_paused(&self, name: &str, paused: bool) -> StoreResult<QueueInfo> {
        tasks_new::set_paused(self, name, paused).await
    }

    async fn resolve_task(&self, id: &IdRef) -> StoreResult<Uuid> {
        self.resolve(
            id,
            "select id from tasks where id between ?1 and ?2 limit 2",
        )
        .await
    }

    async fn get_task(&self, id: Uuid) -> StoreResult<Task> {
        self.task_row(id)
            .await?
            .ok_or(StoreError::NotFound)?
            .into_task()
    }

    async fn list_tasks(&self, query: &TaskQuery) -> StoreResult<Page<Task>> {
        let mut count = QueryBuilder::new("select count(*) from tasks");
        task_filters(&mut count, query);
        let total: i64 = count.build_query_scalar().fetch_one(&self.reader).await?;

        let mut list = QueryBuilder::new("select * from tasks");
        task_filters(&mut list, query);
        list.push(" order by created_at desc, id desc limit ")
            .push_bind(query.limit)
            .push(" offset ")
            .push_bind(query.offset);
        let rows: Vec<TaskRow> = list.build_query_as().fetch_all(&self.reader).await?;
        Ok(Page {
            total,
            items: tasks(rows)?,
        })
    }

    async fn run_task(&self, id: Uuid) -> StoreResult<Task> {
        let queued: Option<TaskRow> = sqlx::query_as(include_str!("sql/run.sql"))
            .bind(id.to_string())
            .bind(stamp(Utc::now()))
            .bind(json_text(&names(&TaskStatus::RUNNABLE))?)
            .bind(json_text(&names(&PARENT_DONE))?)
            .bind(json_text(&names(&PARENT_DONE_ON_FAILURE))?)
            .fetch_optional(&self.writer)
            .await?;
        match queued {
            Some(row) => {
                self.watchers.send(Signal::TasksReady);
                row.into_task()
            }
            None => self.get_task(id).await,
        }
    }

    async fn cancel_task(&self, id: Uuid) -> StoreResult<Task> {
        // Reading the status first, in the same write transaction, tells whether a worker
        // must be told to stop: `returning` sees only the new row.
        let mut tx = self.writer.begin_with("begin immediate").await?;
        let row: TaskRow = sqlx::query_as("select * from tasks where id = ?1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let was = parse_status(&row.status)?;
        if transition(was, &Event::Cancel).is_err() {
            return row.into_task();
        }
        let cancelled: TaskRow = sqlx::query_as(
            r"update tasks
              set status = 'cancelled', finished_at = ?2, lease_token = null,
                  lease_expires_at = null, updated_at = ?2
              where id = ?1
              returning *",
        )
        .bind(id.to_string())
        .bind(stamp(Utc::now()))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        if was == TaskStatus::Running {
            self.watchers.send(Signal::Cancelled(id));
        }
        self.settled();
        cancelled.into_task()
    }

    async fn task_events(&self, id: Uuid) -> StoreResult<Vec<TaskEvent>> {
        let rows: Vec<EventRow> =
            sqlx::query_as("select * from task_events where task_id = ?1 order by seq")
                .bind(id.to_string())
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    async fn prune_finished(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        let mut tx = self.writer.begin_with("begin immediate").await?;
        let ids: Vec<String> = sqlx::query_scalar(include_str!("sql/prune.sql"))
            .bind(stamp(cutoff))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let deleted = ids.len() as u64;
        let ids = json_text(&ids)?;
        for sql in [
            "delete from task_events where task_id in (select value from json_each(?1))",
            "delete from task_dependencies where task_id in (select value from json_each(?1))",
        ] {
            sqlx::query(sql).bind(&ids).execute(&mut *tx).await?;
        }
        if deleted > 0 {
            sqlx::query(EMPTY_WORKFLOWS)
                .bind(stamp(cutoff))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn get_tasks(&self, ids: &[Uuid]) -> StoreResult<Vec<Task>> {
        workflows::get_tasks(self, ids).await
    }

    async fn create_workflow(&self, plan: WorkflowPlan) -> StoreResult<Workflow> {
        tasks_new::create_workflow(self, plan).await
    }

    async fn get_workflow(&self, id: Uuid) -> StoreResult<Workflow> {
        workflows::get(self, id).await
    }

    async fn list_workflows(&self, limit: i64, offset: i64) -> StoreResult<Page<WorkflowSummary>> {
        workflows::list(self, limit, offset).await
    }

    async fn cancel_workflow(&self, id: Uuid) -> StoreResult<Workflow> {
        workflows::cancel(self, id).await
    }

    async fn claim_tasks(&self, claim: &Claim) -> StoreResult<Vec<ClaimedTask>> {
        let now = Utc::now();
        let rows: Vec<TaskRow> = sqlx::query_as(include_str!("sql/claim.sql"))
            .bind(&claim.worker_id)
            .bind(Uuid::new_v4().to_string())
            .bind(stamp(after(now, claim.lease)))
            .bind(stamp(now))
            .bind(claim.drift.at_least)
            .bind(claim.drift.below)
            .bind(claim.limit)
            .bind(claim.queues.as_ref().map(json_text).transpose()?)
            .bind(json_text(&claim.exclude_queues)?)
            .fetch_all(&self.writer)
            .await?;
        rows.into_iter().map(TaskRow::into_claimed).collect()
    }

    async fn finish_attempts(&self, batch: &[(Lease, Outcome)]) -> StoreResult<Vec<Lease>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Encoded before the transaction: one outcome that cannot be stored refuses the batch,
        // as the single statement does on PostgreSQL.
        let columns = batch
            .iter()
            .map(|(_, outcome)| Finish::of(outcome))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tx = self.writer.begin_with("begin immediate").await?;
        let now = stamp(Utc::now());
        let mut recorded = Vec::with_capacity(batch.len());
        let (mut retrying, mut ended) = (false, false);
        for ((lease, _), finish) in batch.iter().zip(columns) {
            let done = sqlx::query(include_str!("sql/finish.sql"))
                .bind(finish.status)
                .bind(finish.result)
                .bind(finish.error)
                .bind(finish.run_at)
                .bind(&now)
                .bind(lease.task_id.to_string())
                .bind(lease.token.to_string())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() > 0 {
                recorded.push(*lease);
                retrying |= finish.status == "retry";
                ended |= finish.status != "retry";
            }
        }
        tx.commit().await?;
        if retrying {
            self.watchers.send(Signal::TasksReady);
        }
        if ended {
            self.settled();
        }
        Ok(recorded)
    }

    async fn renew_leases(&self, held: &[Lease], lease: Duration) -> StoreResult<Vec<Lease>> {
        let expires = stamp(after(Utc::now(), lease));
        self.fenced(include_str!("sql/renew_lease.sql"), expires, held)
            .await
    }

    async fn release(&self, held: &[Lease]) -> StoreResult<u64> {
        let now = stamp(Utc::now());
        let released = self
            .fenced(include_str!("sql/release.sql"), now, held)
            .await?;
        if !released.is_empty() {
            self.watchers.send(Signal::TasksReady);
        }
        Ok(released.len() as u64)
    }

    async fn rescue_expired(&self) -> StoreResult<u64> {
        let statuses: Vec<String> = sqlx::query_scalar(include_str!("sql/rescue_expired.sql"))
            .bind(stamp(Utc::now()))
            .fetch_all(&self.writer)
            .await?;
        if statuses.iter().any(|s| s == "queued") {
            self.watchers.send(Signal::TasksReady);
        }
        if statuses.iter().any(|s| s == "failed") {
            self.settled();
        }
        Ok(statuses.len() as u64)
    }

    async fn register_worker(&self, worker: &Worker) -> StoreResult<()> {
        sqlx::query(
            r"insert into workers (id, host, pid, version, concurrency, escalated_concurrency,
                                   lease_seconds, started_at, last_seen_at)
              values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
              on conflict (id) do update
              set last_seen_at = excluded.last_seen_at, stopped_at = null",
        )
        .bind(&worker.id)
        .bind(&worker.host)
        .bind(worker.pid)
        .bind(&worker.version)
        .bind(worker.concurrency)
        .bind(worker.escalated_concurrency)
        .bind(worker.lease_seconds)
        .bind(stamp(Utc::now()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn worker_seen(&self, id: &str) -> StoreResult<()> {
        sqlx::query("update workers set last_seen_at = ?2 where id = ?1")
            .bind(id)
            .bind(stamp(Utc::now()))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn worker_stopped(&self, id: &str) -> StoreResult<()> {
        sqlx::query("update workers set stopped_at = ?2, last_seen_at = ?2 where id = ?1")
            .bind(id)
            .bind(stamp(Utc::now()))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_workers(&self) -> StoreResult<Vec<Worker>> {
        sqlx::query("delete from workers where last_seen_at < ?1")
            .bind(stamp(Utc::now() - TimeDelta::days(1)))
            .execute(&self.writer)
            .await?;
        let rows: Vec<WorkerRow> =
            sqlx::query_as("select * from workers order by started_at desc, id")
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter().map(WorkerRow::into_worker).collect()
    }

    async fn import_facts(&self, facts: &[Fact]) -> StoreResult<u64> {
        import::facts(self, facts).await
    }

    async fn import_tasks(&self, tasks: &[LegacyTask]) -> StoreResult<u64> {
        import::tasks(self, tasks).await
    }

    async fn stored_ids(&self, kind: RecordKind, ids: &[Uuid]) -> StoreResult<Vec<Uuid>> {
        import::stored_ids(self, kind, ids).await
    }

    async fn create_fact(&self, fact: NewFact) -> StoreResult<Fact> {
        let row: FactRow = sqlx::query_as(
            r"insert into facts (id, text, tags, meta_data, created_at, updated_at)
              values (?1, ?2, ?3, ?4, ?5, ?5)
              returning *",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(&fact.text)
        .bind(json_text(&fact.tags)?)
        .bind(json_text(&fact.meta_data)?)
        .bind(stamp(Utc::now()))
        .fetch_one(&self.writer)
        .await?;
        row.into_fact()
    }

    async fn resolve_fact(&self, id: &IdRef) -> StoreResult<Uuid> {
        self.resolve(
            id,
            "select id from facts where id between ?1 and ?2 limit 2",
        )
        .await
    }

    async fn get_fact(&self, id: Uuid) -> StoreResult<Fact> {
        let row: Option<FactRow> = sqlx::query_as("select * from facts where id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.ok_or(StoreError::NotFound)?.into_fact()
    }

    async fn list_facts(&self, query: &FactQuery) -> StoreResult<Page<Fact>> {
        let page = self.search_facts(query).await?;
        Ok(Page {
            total: page.total.unwrap_or_default(),
            items: page.items.into_iter().map(|(fact, _)| fact).collect(),
        })
    }

    async fn search_facts(&self, query: &FactQuery) -> StoreResult<FactPage> {
        facts::search(self, query).await
    }

    async fn create_facts(&self, new: Vec<NewFact>) -> StoreResult<Vec<Fact>> {
        facts::create_many(self, new).await
    }

    async fn tag_counts(&self, prefix: Option<&str>, limit: i64) -> StoreResult<Vec<TagCount>> {
        facts::tag_counts(self, prefix, limit).await
    }

    async fn update_fact(&self, id: Uuid, patch: FactPatch) -> StoreResult<Fact> {
        if patch.is_empty() {
            return self.get_fact(id).await;
        }
        let mut update = QueryBuilder::<Sqlite>::new("update facts set updated_at = ");
        update.push_bind(stamp(Utc::now()));
        if let Some(text) = &patch.text {
            update.push(", text = ").push_bind(text.clone());
        }
        if let Some(tags) = &patch.tags {
            update.push(", tags = ").push_bind(json_text(tags)?);
        }
        if let Some(meta_data) = &patch.meta_data {
            update
                .push(", meta_data = ")
                .push_bind(json_text(meta_data)?);
        }
        update
            .push(" where id = ")
            .push_bind(id.to_string())
            .push(" returning *");
        let row: Option<FactRow> = update.build_query_as().fetch_optional(&self.writer).await?;
        row.ok_or(StoreError::NotFound)?.into_fact()
    }

    async fn delete_fact(&self, id: Uuid) -> StoreResult<()> {
        let deleted = sqlx::query("delete from facts where id = ?1")
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_schedule(&self, schedule: NewSchedule) -> StoreResult<Schedule> {
        schedules::create(self, schedule).await
    }

    async fn get_schedule(&self, id: Uuid) -> StoreResult<Schedule> {
        schedules::get(self, id).await
    }

    async fn list_schedules(&self, limit: i64, offset: i64) -> StoreResult<Page<Schedule>> {
        schedules::list(self, limit, offset).await
    }

    async fn update_schedule(&self, id: Uuid, patch: SchedulePatch) -> StoreResult<Schedule> {
        schedules::update(self, id, patch).await
    }

    async fn delete_schedule(&self, id: Uuid) -> StoreResult<()> {
        schedules::delete(self, id).await
    }

    async fn fire_due_schedules(&self, limit: i64) -> StoreResult<Firing> {
        schedules::fire_due(self, limit).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn timestamps_keep_one_width_so_text_order_is_time_order() {
        let early = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z").unwrap();
        let late = DateTime::parse_from_rfc3339("2026-11-28T12:00:00.5Z").unwrap();
        let (early, late) = (
            stamp(early.with_timezone(&Utc)),
            stamp(late.with_timezone(&Utc)),
        );
        assert_eq!(early, "2026-11-28T12:00:00.000000Z");
        assert_eq!(late, "2026-11-28T12:00:00.500000Z");
        assert!(early < late);
        assert_eq!(stamp(parse_time(&late).unwrap()), late);
    }

    #[test]
    fn json_with_a_nul_character_is_refused_but_an_escaped_backslash_is_not() {
        assert!(json_text(&json!({"a": "x\u{0}y"})).is_err());
        assert!(json_text(&json!({"k\u{0}": 1})).is_err());
        assert!(json_text(&json!({"a": r"\u0000 as text"})).is_ok());
        assert!(json_text(&json!({"a": "\u{1f}"})).is_ok());
    }

    /// A migrated store on a file of its own, removed with the folder when dropped.
    struct Scratch {
        store: SqliteStore,
        folder: PathBuf,
    }

    impl Scratch {
        async fn new() -> Scratch {
            let folder = std::env::temp_dir().join(format!("seedcore-unit-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&folder).unwrap();
            let store = SqliteStore::open(&folder.join("seedcore.db"))
                .await
                .unwrap();
            store.migrate().await.unwrap();
            Scratch { store, folder }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.folder);
        }
    }

    #[tokio::test]
    async fn upgrading_rebuilds_the_tasks_table_keeping_rows_order_and_triggers() {
        let folder = std::env::temp_dir().join(format!("seedcore-unit-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&folder).unwrap();
        let store = SqliteStore::open(&folder.join("seedcore.db"))
            .await
            .unwrap();
        // The schema before dependencies, with rows written by the code of that time.
        MIGRATOR
            .run_to(20261128000005, &store.writer)
            .await
            .unwrap();
        for (id, status) in [
            ("0002", "queued"),
            ("0001", "queued"),
            ("0003", "completed"),
        ] {
            sqlx::query(
                "insert into tasks (id, type, status, queue, priority) \
                 values ('00000000-0000-0000-0000-00000000' || ?1, 'echo', ?2, 'default', 0)",
            )
            .bind(id)
            .bind(status)
            .execute(&store.writer)
            .await
            .unwrap();
        }
        store.migrate().await.unwrap();

        // Arrival order (the rowid) survives: the claim takes 0002 before 0001.
        let claimed = store.claim_tasks(&claim_all("w")).await.unwrap();
        let ids: Vec<String> = claimed.iter().map(|c| c.task.id.to_string()).collect();
        assert!(
            ids[0].ends_with("0002") && ids[1].ends_with("0001"),
            "{ids:?}"
        );
        let done = store
            .get_task(Uuid::parse_str("00000000-0000-0000-0000-000000000003").unwrap())
            .await
            .unwrap();
        assert_eq!(done.status, TaskStatus::Completed);
        assert!(done.depends_on.is_empty() && !done.run_on_failure);
        // The trail written before the upgrade stays, and the triggers were recreated.
        let events = store.task_events(claimed[0].task.id).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "claimed"]);
        store.close().await;
        let _ = std::fs::remove_dir_all(&folder);
    }

    fn recorder(store: &SqliteStore) -> (Arc<std::sync::Mutex<Vec<Signal>>>, CancellationToken) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let stop = CancellationToken::new();
        let sink: SignalSink = Arc::new(move |signal| record.lock().unwrap().push(signal));
        // Detached: the watching task ends when `stop` is cancelled.
        drop(store.watch(sink, stop.clone()));
        (seen, stop)
    }

    fn claim_all(worker: &str) -> Claim {
        Claim::any(worker, 10, Duration::from_secs(30))
    }

    #[tokio::test]
    async fn watchers_hear_of_ready_tasks_and_of_a_running_task_cancelled() {
        let scratch = Scratch::new().await;
        let store = &scratch.store;
        let (seen, stop) = recorder(store);
        let idle = store.create_task(NewTask::of_type("echo")).await.unwrap();
        assert!(
            seen.lock().unwrap().is_empty(),
            "a created task is not ready"
        );
        store.run_task(idle.id).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [Signal::TasksReady]);

        let claimed = store.claim_tasks(&claim_all("w")).await.unwrap();
        store.release(&[claimed[0].lease]).await.unwrap();
        store.claim_tasks(&claim_all("w")).await.unwrap();
        store.cancel_task(idle.id).await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Signal::TasksReady,
                Signal::TasksReady,
                Signal::Cancelled(idle.id)
            ]
        );
        let kinds: Vec<String> = store
            .task_events(idle.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "created",
                "queued",
                "claimed",
                "released",
                "claimed",
                "cancelled"
            ]
        );

        stop.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        store
            .create_task(NewTask {
                run_immediately: true,
                ..NewTask::of_type("echo")
            })
            .await
            .unwrap();
        assert_eq!(
            seen.lock().unwrap().len(),
            3,
            "a stopped watcher hears nothing"
        );
    }

    #[tokio::test]
    async fn q_finds_metadata_values_in_any_script_and_takes_wildcards_literally() {
        let scratch = Scratch::new().await;
        let store = &scratch.store;
        for (text, meta) in [
            ("plain", json!({"city": "Zürich", "note": "50%_off"})),
            ("other", json!({"city": "Bern", "note": "500 off"})),
        ] {
            let fact = NewFact {
                text: text.into(),
                tags: vec!["t".into()],
                meta_data: meta.as_object().unwrap().clone(),
            };
            store.create_fact(fact).await.unwrap();
        }
        let texts = |q: &str| {
            let query = FactQuery {
                q: Some(q.into()),
                limit: 10,
                ..FactQuery::default()
            };
            async move {
                let page = store.list_facts(&query).await.unwrap();
                page.items.into_iter().map(|f| f.text).collect::<Vec<_>>()
            }
        };
        assert_eq!(
            texts("zÜr").await,
            Vec::<String>::new(),
            "non-ASCII is not folded"
        );
        assert_eq!(texts("ZüRICH").await, ["plain"]);
        assert_eq!(texts("50%_").await, ["plain"]);
        assert_eq!(texts("0_o").await, Vec::<String>::new());
        assert_eq!(texts("PLAIN").await, ["plain"]);
    }
}
