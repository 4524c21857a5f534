//! The PostgreSQL store: production storage and the way to scale out.
//!
//! Claims use `for update skip locked` on a partial index of ready tasks; wake-ups travel by
//! LISTEN/NOTIFY (sent by the triggers in the migrations, so every code path signals); every
//! write that finishes an attempt is fenced by `id` and `lease_token`. Live tasks are in
//! `tasks`, finished ones move to `task_history` (see the task_history migration): anything
//! that may read a finished task reads the view `all_tasks`, anything that changes a live one
//! writes `tasks`.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{
    PgPool, Postgres, QueryBuilder,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    types::Json,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Claim, ClaimedTask, CountMode, ESTIMATE_EXACT_UP_TO, FactPage, FactQuery, Lease,
    MigrationReport, Outcome, Page, RecordKind, Signal, SignalSink, Store, StoreError, StoreResult,
    TagCount, TaskQuery, coalesce::Coalescer, like_literal, watchers::Watchers,
};
use crate::legacy::LegacyTask;
use crate::model::transition::{PARENT_DONE, PARENT_DONE_ON_FAILURE, names};
use crate::model::{
    Fact, FactCursor, FactPatch, IdRef, NewFact, NewTask, QueueInfo, Task, TaskEvent, TaskStatus,
    Worker, Workflow, WorkflowPlan, WorkflowSummary,
};
use crate::model::{NewSchedule, Schedule, SchedulePatch};
use crate::store::Firing;

mod batched;
mod schedules;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const TASKS_CHANNEL: &str = "seedcore_tasks";
const CANCEL_CHANNEL: &str = "seedcore_cancel";

/// Rows per insert statement of an import (PostgreSQL allows 65,535 bind parameters).
const IMPORT_CHUNK: usize = 1000;

/// A pooled connection idle longer than this is pinged (one round trip) before it is handed
/// out; one used more recently goes straight to work. Pinging on every acquire, the pool's
/// default, cost a round trip per statement under load. A connection that broke within the
/// window fails its statement as unavailable, which every caller already handles.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Tables `verify` expects after migration.
const TABLES: [&str; 6] = [
    "tasks",
    "task_events",
    "facts",
    "workers",
    "workflows",
    "schedules",
];

/// The PostgreSQL store: a connection pool shared by every clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// This process's watchers, told of new work without waiting for NOTIFY's round trip.
    watchers: Arc<Watchers>,
    announcer: Arc<Announcer>,
    /// Single creates without parents, written in batches (started on first use).
    creates: Arc<OnceLock<Coalescer<batched::Create, StoreResult<Option<TaskRow>>>>>,
    /// Reads of one task by id, made in batches (started on first use).
    reads: Arc<OnceLock<Coalescer<Uuid, StoreResult<Option<TaskRow>>>>>,
    /// Single fact creates, written in batches (started on first use).
    fact_creates: Arc<OnceLock<Coalescer<NewFact, StoreResult<FactRow>>>>,
}

/// Coalesces announcements of new work: one NOTIFY at a time per process, and the requests
/// made while one is in flight are covered by one more after it. A burst of enqueues costs a
/// couple of notifications, none of them inside an enqueuing transaction.
struct Announcer {
    /// Requests not yet covered by a NOTIFY sent after them; non-zero while a sender runs.
    pending: AtomicUsize,
    /// The payload of this store's NOTIFYs. Its own watchers were woken before the NOTIFY was
    /// sent, so its listener drops the echo instead of waking every lane a second time (each
    /// wake-up of an idle lane costs a claim statement).
    origin: String,
}

impl Default for Announcer {
    fn default() -> Self {
        Announcer {
            pending: AtomicUsize::new(0),
            origin: Uuid::new_v4().to_string(),
        }
    }
}

impl PgStore {
    /// Tells the workers of every process that tasks are ready: this process's at once, the
    /// others through NOTIFY.
    fn announce(&self) {
        self.watchers.send(Signal::TasksReady);
        if self.announcer.pending.fetch_add(1, Ordering::SeqCst) > 0 {
            return; // the running sender will cover this request
        }
        let (pool, announcer) = (self.pool.clone(), self.announcer.clone());
        tokio::spawn(async move {
            loop {
                let covered = announcer.pending.load(Ordering::SeqCst);
                if let Err(err) = sqlx::query("select pg_notify('seedcore_tasks', $1)")
                    .bind(&announcer.origin)
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %err, "cannot announce new tasks; workers will poll");
                }
                let done = announcer.pending.compare_exchange(
                    covered,
                    0,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                if done.is_ok() {
                    return;
                }
            }
        });
    }
}

impl PgStore {
    /// Opens a pool; fails when the server cannot be reached within the acquire timeout.
    pub async fn connect(
        options: PgConnectOptions,
        pool_size: u32,
        acquire_timeout: Duration,
    ) -> StoreResult<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(PgStore::from_pool(pool))
    }

    /// A store over an existing pool (for a host application that has one already).
    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore {
            pool,
            watchers: Arc::default(),
            announcer: Arc::default(),
            creates: Arc::default(),
            reads: Arc::default(),
            fact_creates: Arc::default(),
        }
    }

    fn batched_creates(&self) -> &Coalescer<batched::Create, StoreResult<Option<TaskRow>>> {
        self.started(&self.creates, |pool, creates| async move {
            batched::insert(&pool, creates).await
        })
    }

    fn batched_reads(&self) -> &Coalescer<Uuid, StoreResult<Option<TaskRow>>> {
        self.started(&self.reads, |pool, ids| async move {
            batched::get(&pool, ids).await
        })
    }

    fn batched_fact_creates(&self) -> &Coalescer<NewFact, StoreResult<FactRow>> {
        self.started(&self.fact_creates, |pool, facts| async move {
            batched::insert_facts(&pool, facts).await
        })
    }

    /// The coalescer in `cell`, its loop started on first use with `run` over this pool.
    fn started<'a, In, Out, Fut>(
        &self,
        cell: &'a OnceLock<Coalescer<In, Out>>,
        run: impl Fn(PgPool, Vec<In>) -> Fut + Send + Sync + 'static,
    ) -> &'a Coalescer<In, Out>
    where
        In: Send + 'static,
        Out: Send + 'static,
        Fut: std::future::Future<Output = Vec<Out>> + Send + 'static,
    {
        cell.get_or_init(|| {
            let pool = self.pool.clone();
            Coalescer::spawn(batched::MAX_BATCH, batched::IN_FLIGHT, move |inputs| {
                run(pool.clone(), inputs)
            })
        })
    }

    /// The pool underneath, for queries of the host application or tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn resolve(&self, id: &IdRef, by_range: &'static str) -> StoreResult<Uuid> {
        let (low, high) = match id {
            IdRef::Exact(id) => return Ok(*id),
            IdRef::Prefix { range: None, .. } => return Err(StoreError::NotFound),
            IdRef::Prefix {
                range: Some(range), ..
            } => *range,
        };
        let ids: Vec<Uuid> = sqlx::query_scalar(by_range)
            .bind(low)
            .bind(high)
            .fetch_all(&self.pool)
            .await?;
        match ids.as_slice() {
            [] => Err(StoreError::NotFound),
            [one] => Ok(*one),
            _ => Err(StoreError::AmbiguousPrefix(id.as_sent())),
        }
    }

    async fn listen(&self, sink: &SignalSink, stop: &CancellationToken) {
        let mut listener = loop {
            match self.subscribe().await {
                Ok(listener) => break listener,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for wake-ups yet; polling meanwhile");
                    if sleep_or_stop(stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        loop {
            let received = tokio::select! {
                _ = stop.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(note)) if note.channel() == CANCEL_CHANNEL => {
                    if let Ok(id) = note.payload().parse() {
                        sink(Signal::Cancelled(id));
                    }
                }
                Ok(Some(note)) if note.payload() == self.announcer.origin => {}
                Ok(Some(_)) => sink(Signal::TasksReady),
                // The connection dropped and will be re-established by the next call:
                // notifications may have been missed, so look for work now.
                Ok(None) => sink(Signal::TasksReady),
                Err(err) => {
                    tracing::warn!(error = %err, "wake-up listener lost its connection; retrying");
                    if sleep_or_stop(stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        }
    }

    async fn subscribe(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all([TASKS_CHANNEL, CANCEL_CHANNEL]).await?;
        Ok(listener)
    }
}

/// Sleeps, or returns true early when asked to stop.
async fn sleep_or_stop(stop: &CancellationToken, pause: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(pause) => false,
    }
}

/// A `tasks` row as read from PostgreSQL.
#[derive(Clone, sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    #[sqlx(rename = "type")]
    task_type: String,
    description: String,
    params: Json<Value>,
    domain: Option<String>,
    drift_score: f64,
    status: String,
    result: Option<Json<Value>>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    attempts: i32,
    max_attempts: i32,
    timeout_seconds: Option<f64>,
    run_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    worker_id: Option<String>,
    lease_token: Option<Uuid>,
    attached_fact_ids: Vec<Uuid>,
    queue: String,
    priority: i32,
    idempotency_key: Option<String>,
    depends_on: Vec<Uuid>,
    run_on_failure: bool,
    workflow_id: Option<Uuid>,
    workflow_key: Option<String>,
}

impl TaskRow {
    fn into_task(self) -> StoreResult<Task> {
        let status = parse_status(&self.status)?;
        Ok(Task {
            id: self.id,
            task_type: self.task_type,
            description: self.description,
            params: self.params.0,
            domain: self.domain,
            drift_score: self.drift_score,
            status,
            result: self.result.map(|r| r.0),
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            timeout_seconds: self.timeout_seconds,
            run_at: self.run_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            worker_id: self.worker_id,
            attached_fact_ids: self.attached_fact_ids,
            queue: self.queue,
            priority: self.priority,
            idempotency_key: self.idempotency_key,
            depends_on: self.depends_on,
            run_on_failure: self.run_on_failure,
            workflow_id: self.workflow_id,
            workflow_key: self.workflow_key,
        })
    }

    fn into_claimed(self) -> StoreResult<ClaimedTask> {
        let token = self
            .lease_token
            .ok_or_else(|| StoreError::Corrupt("claimed task without a lease token".into()))?;
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

fn parse_status(text: &str) -> StoreResult<TaskStatus> {
    TaskStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown status '{text}'")))
}

fn tasks(rows: Vec<TaskRow>) -> StoreResult<Vec<Task>> {
    rows.into_iter().map(TaskRow::into_task).collect()
}

#[derive(Clone, sqlx::FromRow)]
struct FactRow {
    id: Uuid,
    text: String,
    tags: Vec<String>,
    meta_data: Json<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<FactRow> for Fact {
    fn from(row: FactRow) -> Fact {
        Fact {
            id: row.id,
            text: row.text,
            tags: row.tags,
            meta_data: row.meta_data.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
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
    started_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
}

impl From<WorkerRow> for Worker {
    fn from(row: WorkerRow) -> Worker {
        Worker {
            id: row.id,
            host: row.host,
            pid: row.pid,
            version: row.version,
            concurrency: row.concurrency,
            escalated_concurrency: row.escalated_concurrency,
            lease_seconds: row.lease_seconds,
            started_at: row.started_at,
            last_seen_at: row.last_seen_at,
            stopped_at: row.stopped_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    task_id: Uuid,
    at: DateTime<Utc>,
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
            task_id: self.task_id,
            at: self.at,
            kind: self.kind,
            from_status: self.from_status.as_deref().map(parse_status).transpose()?,
            to_status: parse_status(&self.to_status)?,
            attempt: self.attempt,
            worker_id: self.worker_id,
            error: self.error,
        })
    }
}

/// An insert of new tasks, each with the status and error it starts with, ready for an
/// `on conflict` or `returning` clause.
fn insert_tasks<'a>(
    tasks: impl IntoIterator<Item = (&'a NewTask, &'a (TaskStatus, Option<String>))>,
) -> QueryBuilder<Postgres> {
    let mut insert = QueryBuilder::new(
        "insert into tasks (id, type, description, params, domain, drift_score, status, error, \
         max_attempts, timeout_seconds, attached_fact_ids, queue, priority, idempotency_key, \
         depends_on, run_on_failure, workflow_id, workflow_key, finished_at, run_at) ",
    );
    insert.push_values(tasks, |mut row, (task, (status, error))| {
        row.push_bind(task.id)
            .push_bind(task.task_type.clone())
            .push_bind(task.description.clone())
            .push_bind(Json(task.params.clone()))
            .push_bind(task.domain.clone())
            .push_bind(task.drift_score)
            .push_bind(status.as_str())
            .push_bind(error.clone())
            .push_bind(task.max_attempts)
            .push_bind(task.timeout_seconds)
            .push_bind(task.attached_fact_ids.clone())
            .push_bind(task.queue.clone())
            .push_bind(task.priority)
            .push_bind(task.idempotency_key.clone())
            .push_bind(task.depends_on.clone())
            .push_bind(task.run_on_failure)
            .push_bind(task.workflow.as_ref().map(|w| w.0))
            .push_bind(task.workflow.as_ref().map(|w| w.1.clone()))
            .push(if status.is_final() { "now()" } else { "null" })
            .push("coalesce(")
            .push_bind_unseparated(task.run_at)
            .push_unseparated(", now())");
    });
    insert
}

/// The current status of every parent the tasks name, each locked `for share` until the
/// transaction ends: a parent cannot finish meanwhile unseen (its settle trigger would miss a
/// child not yet committed), and one finishing now is waited for and read as it ends.
async fn lock_parents(
    tx: &mut sqlx::PgConnection,
    tasks: &[NewTask],
) -> StoreResult<std::collections::HashMap<Uuid, TaskStatus>> {
    let ids = super::parents_of(tasks);
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let mut rows: Vec<(Uuid, String)> =
        sqlx::query_as("select id, status from tasks where id = any($1) order by id for share")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
    if rows.len() < ids.len() {
        // The others are finished and moved to the history (where they can no longer change),
        // or are not tasks at all. This statement sees a move that committed while the lock
        // above waited for it.
        let locked: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
        let archived: Vec<(Uuid, String)> = sqlx::query_as(
            "select id, status from task_history where id = any($1) and not id = any($2)",
        )
        .bind(&ids)
        .bind(&locked)
        .fetch_all(&mut *tx)
        .await?;
        rows.extend(archived);
    }
    rows.into_iter()
        .map(|(id, status)| Ok((id, parse_status(&status)?)))
        .collect()
}

fn leases(pairs: Vec<(Uuid, Uuid)>) -> Vec<Lease> {
    pairs
        .into_iter()
        .map(|(task_id, token)| Lease { task_id, token })
        .collect()
}

/// A batch of attempt outcomes as the parallel arrays `finish.sql` unnests.
#[derive(Default)]
struct FinishColumns {
    ids: Vec<Uuid>,
    tokens: Vec<Uuid>,
    statuses: Vec<&'static str>,
    results: Vec<Option<Value>>,
    errors: Vec<Option<String>>,
    run_ats: Vec<Option<DateTime<Utc>>>,
}

impl From<&[(Lease, Outcome)]> for FinishColumns {
    fn from(batch: &[(Lease, Outcome)]) -> Self {
        let mut columns = FinishColumns::default();
        for (lease, outcome) in batch {
            let (status, result, error, run_at) = match outcome {
                Outcome::Completed(result) => ("completed", Some(result.clone()), None, None),
                Outcome::Retry { error, run_at } => {
                    ("retry", None, Some(error.clone()), Some(*run_at))
                }
                Outcome::Failed(error) => ("failed", None, Some(error.clone()), None),
            };
            columns.ids.push(lease.task_id);
            columns.tokens.push(lease.token);
            columns.statuses.push(status);
            columns.results.push(result);
            columns.errors.push(error);
            columns.run_ats.push(run_at);
        }
        columns
    }
}

fn task_filters(builder: &mut QueryBuilder<Postgres>, query: &TaskQuery) {
    builder.push(" where true");
    if let Some(status) = query.status {
        builder.push(" and status = ").push_bind(status.as_str());
    }
    if let Some(task_type) = &query.task_type {
        builder.push(" and type = ").push_bind(task_type);
    }
    if let Some(domain) = &query.domain {
        builder.push(" and domain = ").push_bind(domain);
    }
}

/// The columns of a fact as the API shows it, of the facts aliased `f`.
const FACT_COLUMNS: &str = "f.id, f.text, f.tags, f.meta_data, f.created_at, f.updated_at";

/// The rows a fact search reads, as `f` (facts) and `v` (their search vectors). The vectors
/// live in a table of their own so that `facts` rows stay narrow (see the fact_vectors
/// migration); a vector row carries its fact's tags and creation time too. A search without
/// `search=` reads facts alone; one with `search=` reads the vectors alone, unless it also
/// filters on the text or the metadata, which joins the facts.
fn fact_source(query: &FactQuery) -> &'static str {
    let reads_facts = query.q.is_some() || !query.meta.is_empty();
    match (&query.search, reads_facts) {
        (None, _) => " from facts f",
        (Some(_), false) => " from fact_vectors v",
        (Some(_), true) => " from facts f join fact_vectors v on v.id = f.id",
    }
}

/// The alias of the table a search reads tags and creation times from (both tables hold them).
fn tags_and_times(query: &FactQuery) -> &'static str {
    match query.search {
        Some(_) => "v",
        None => "f",
    }
}

/// The full-text query of `search=`, in the language the vectors were built with.
const TS_QUERY: &str = "websearch_to_tsquery((select value from seedcore_settings \
                        where key = 'fts_language')::regconfig, ";

/// The `where` clause of a fact search.
///
/// Statements built with it run unprepared (`persistent(false)`): the right plan depends on the
/// values (a rare word is a trigram bitmap, a common one an ordered walk of the newest facts),
/// and a prepared statement switches to one generic plan after five runs: 300 ms instead of
/// 1.7 ms for a common word's page on a million facts, 16 ms instead of 1 ms for a rare word
/// with a tag (the generic plan intersects with the tag's whole posting list).
fn fact_filters(builder: &mut QueryBuilder<Postgres>, query: &FactQuery) {
    let at = tags_and_times(query);
    builder.push(" where true");
    if let Some(q) = &query.q {
        let pattern = format!("%{}%", like_literal(q));
        builder
            .push(" and (f.text ilike ")
            .push_bind(pattern.clone())
            .push(r" escape '\' or f.meta_data::text ilike ")
            .push_bind(pattern)
            .push(r" escape '\')");
    }
    if let Some(search) = &query.search {
        builder
            .push(" and v.search_vector @@ ")
            .push(TS_QUERY)
            .push_bind(search.clone())
            .push(")");
    }
    if !query.tags.is_empty() {
        builder
            .push(format_args!(" and {at}.tags @> "))
            .push_bind(query.tags.clone());
    }
    if !query.any_tags.is_empty() {
        builder
            .push(format_args!(" and {at}.tags && "))
            .push_bind(query.any_tags.clone());
    }
    for filter in &query.meta {
        builder.push(" and (false");
        for value in &filter.values {
            let contained = serde_json::json!({ filter.key.as_str(): value });
            builder
                .push(" or f.meta_data @> ")
                .push_bind(Json(contained));
        }
        builder.push(")");
    }
    if let Some(after) = query.created_after {
        builder
            .push(format_args!(" and {at}.created_at > "))
            .push_bind(after);
    }
    if let Some(before) = query.created_before {
        builder
            .push(format_args!(" and {at}.created_at < "))
            .push_bind(before);
    }
}

/// When the query filters on nothing but at most one tag, the counter to read: "" for all facts,
/// else the tag. Totals of other filters are counted from the rows.
fn counted_filter(query: &FactQuery) -> Option<&str> {
    let only_tags = query.q.is_none()
        && query.search.is_none()
        && query.any_tags.is_empty()
        && query.meta.is_empty()
        && query.created_after.is_none()
        && query.created_before.is_none();
    match query.tags.as_slice() {
        [] if only_tags => Some(""),
        [tag] if only_tags => Some(tag),
        _ => None,
    }
}

impl PgStore {
    async fn count_facts(&self, query: &FactQuery) -> StoreResult<(Option<i64>, bool)> {
        if query.count != CountMode::None
            && let Some(tag) = counted_filter(query)
        {
            let total = sqlx::query_scalar(include_str!("sql/fact_total.sql"))
                .bind(tag)
                .fetch_one(&self.pool)
                .await?;
            return Ok((Some(total), false));
        }
        match query.count {
            CountMode::None => Ok((None, false)),
            CountMode::Exact => {
                let mut count = QueryBuilder::new("select count(*)");
                count.push(fact_source(query));
                fact_filters(&mut count, query);
                Ok((
                    Some(
                        count
                            .build_query_scalar()
                            .persistent(false)
                            .fetch_one(&self.pool)
                            .await?,
                    ),
                    false,
                ))
            }
            CountMode::Estimate => {
                // The planner first (a millisecond): when it expects many matches, its
                // estimate is the answer, and no match is visited.
                let expected = self.planner_estimate(query).await?;
                if expected > ESTIMATE_EXACT_UP_TO {
                    return Ok((Some(expected), true));
                }
                // It expects few: count them, stopping one past the cap in case it was wrong.
                let mut capped = QueryBuilder::new("select count(*) from (select 1");
                capped.push(fact_source(query));
                fact_filters(&mut capped, query);
                capped
                    .push(" limit ")
                    .push_bind(ESTIMATE_EXACT_UP_TO + 1)
                    .push(") capped");
                let counted: i64 = capped
                    .build_query_scalar()
                    .persistent(false)
                    .fetch_one(&self.pool)
                    .await?;
                if counted <= ESTIMATE_EXACT_UP_TO {
                    return Ok((Some(counted), false));
                }
                Ok((Some(expected.max(counted)), true))
            }
        }
    }

    /// Tasks matching the list's filters: from the counters when it filters on status alone.
    async fn count_tasks(&self, query: &TaskQuery) -> StoreResult<i64> {
        if query.task_type.is_none() && query.domain.is_none() {
            // Tasks per status are counted as they change (see the counters migration).
            return Ok(sqlx::query_scalar(include_str!("sql/task_total.sql"))
                .bind(query.status.map(TaskStatus::as_str))
                .fetch_one(&self.pool)
                .await?);
        }
        let mut count = QueryBuilder::new("select count(*) from all_tasks");
        task_filters(&mut count, query);
        Ok(count.build_query_scalar().fetch_one(&self.pool).await?)
    }

    /// One page of the task list, newest first.
    async fn task_page(&self, query: &TaskQuery) -> StoreResult<Vec<TaskRow>> {
        let mut list = QueryBuilder::new("select * from all_tasks");
        task_filters(&mut list, query);
        list.push(" order by created_at desc, id desc limit ")
            .push_bind(query.limit)
            .push(" offset ")
            .push_bind(query.offset);
        Ok(list.build_query_as().fetch_all(&self.pool).await?)
    }

    /// One page of facts matching the query, each with its rank when `search=` is given.
    async fn fact_page(&self, query: &FactQuery) -> StoreResult<Vec<RankedFactRow>> {
        let mut list = match &query.search {
            Some(search) => ranked_page(query, search),
            None => newest_page(query),
        };
        Ok(list
            .build_query_as()
            .persistent(false)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The planner's row estimate for the query's filters.
    async fn planner_estimate(&self, query: &FactQuery) -> StoreResult<i64> {
        let mut explain = QueryBuilder::new("explain (format json) select 1");
        explain.push(fact_source(query));
        fact_filters(&mut explain, query);
        let plan: Json<Value> = explain
            .build_query_scalar()
            .persistent(false)
            .fetch_one(&self.pool)
            .await?;
        Ok(plan.0[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as i64)
    }
}

/// A page of facts, newest first (keyset-paged by `cursor`, or by `offset`).
fn newest_page(query: &FactQuery) -> QueryBuilder<Postgres> {
    let mut list = QueryBuilder::new("select ");
    list.push(FACT_COLUMNS).push(", null::real as rank");
    list.push(fact_source(query));
    fact_filters(&mut list, query);
    if let Some(cursor) = &query.cursor {
        list.push(" and (f.created_at, f.id) < (")
            .push_bind(cursor.created_at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    list.push(" order by f.created_at desc, f.id desc limit ")
        .push_bind(query.limit)
        .push(" offset ")
        .push_bind(query.offset);
    list
}

/// A page of `search=` matches, best rank first: ranked and cut among the vectors (and the facts
/// only when other filters need them), then the page's facts read by id.
fn ranked_page(query: &FactQuery, search: &str) -> QueryBuilder<Postgres> {
    let mut list = QueryBuilder::new("select ");
    list.push(FACT_COLUMNS)
        .push(", m.rank from (select v.id, v.created_at, ts_rank_cd(v.search_vector, ")
        .push(TS_QUERY)
        .push_bind(search.to_owned())
        .push(")) as rank");
    list.push(fact_source(query));
    fact_filters(&mut list, query);
    list.push(" order by rank desc, v.created_at desc, v.id desc limit ")
        .push_bind(query.limit)
        .push(" offset ")
        .push_bind(query.offset)
        .push(") m join facts f on f.id = m.id order by m.rank desc, m.created_at desc, m.id desc");
    list
}

#[derive(sqlx::FromRow)]
struct RankedFactRow {
    #[sqlx(flatten)]
    fact: FactRow,
    rank: Option<f32>,
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<MigrationReport> {
        // The original service's tables are taken over by `db adopt`, never migrated over.
        crate::adopt::refuse_unadopted(&self.pool).await?;
        let before: Vec<i64> =
            match sqlx::query_scalar("select version from _sqlx_migrations where success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(versions) => versions,
                // 42P01: no migrations table yet, so nothing was applied.
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => {
                    Vec::new()
                }
                Err(err) => return Err(err.into()),
            };
        MIGRATOR.run(&self.pool).await?;
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
        let present: Vec<String> = sqlx::query_scalar(
            r"select table_name::text from information_schema.tables
              where table_schema = current_schema() and table_name = any($1)",
        )
        .bind(&TABLES[..])
        .fetch_all(&self.pool)
        .await?;
        Ok(TABLES
            .iter()
            .filter(|t| !present.iter().any(|p| p == *t))
            .map(|t| t.to_string())
            .collect())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    fn watch(&self, sink: SignalSink, stop: CancellationToken) -> JoinHandle<()> {
        let store = self.clone();
        let local = self.watchers.add(sink.clone());
        tokio::spawn(async move {
            store.listen(&sink, &stop).await;
            store.watchers.remove(local);
        })
    }

    async fn create_task(&self, task: NewTask) -> StoreResult<Task> {
        let key = task.idempotency_key.clone();
        let tasks = std::slice::from_ref(&task);
        // A key in use (perhaps by a create racing this one) leaves the first task in place.
        const KEEP_FIRST: &str = " on conflict (idempotency_key) where idempotency_key is not \
                                  null do nothing returning *";
        let row: Option<TaskRow> = if task.depends_on.is_empty() && task.workflow.is_none() {
            let (status, error) = super::starts(tasks, &Default::default())?.remove(0);
            let create = batched::Create {
                task,
                status,
                error,
            };
            self.batched_creates().call(create).await??
        } else {
            let mut tx = self.pool.begin().await?;
            let starts = super::starts(tasks, &lock_parents(&mut tx, tasks).await?)?;
            let mut insert = insert_tasks(tasks.iter().zip(&starts));
            insert.push(KEEP_FIRST);
            let row = insert.build_query_as().fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            row
        };
        if let Some(row) = row {
            let task = row.into_task()?;
            if task.status == TaskStatus::Queued {
                self.announce();
            }
            return Ok(task);
        }
        let existing: TaskRow =
            sqlx::query_as("select * from all_tasks where idempotency_key = $1")
                .bind(key)
                .fetch_one(&self.pool)
                .await?;
        existing.into_task()
    }

    async fn create_tasks(&self, tasks: Vec<NewTask>) -> StoreResult<Vec<Task>> {
        let mut tx = self.pool.begin().await?;
        let starts = super::starts(&tasks, &lock_parents(&mut tx, &tasks).await?)?;
        let mut created = Vec::with_capacity(tasks.len());
        for (chunk, starts) in tasks.chunks(IMPORT_CHUNK).zip(starts.chunks(IMPORT_CHUNK)) {
            let mut insert = insert_tasks(chunk.iter().zip(starts));
            insert.push(" returning *");
            let rows: Vec<TaskRow> = insert.build_query_as().fetch_all(&mut *tx).await?;
            created.extend(
                rows.into_iter()
                    .map(TaskRow::into_task)
                    .collect::<StoreResult<Vec<_>>>()?,
            );
        }
        tx.commit().await?;
        if created.iter().any(|t| t.status == TaskStatus::Queued) {
            self.announce();
        }
        Ok(created)
    }

    async fn list_queues(&self) -> StoreResult<Vec<QueueInfo>> {
        let counts: Vec<(String, String, i64)> =
            sqlx::query_as(include_str!("sql/queue_counts.sql"))
                .bind(None::<&str>)
                .fetch_all(&self.pool)
                .await?;
        let paused: Vec<(String, bool)> = sqlx::query_as("select name, paused from queues")
            .fetch_all(&self.pool)
            .await?;
        Ok(super::queue_infos(counts, paused))
    }

    async fn set_queue_paused(&self, name: &str, paused: bool) -> StoreResult<QueueInfo> {
        sqlx::query(
            r"insert into queues (name, paused) values ($1, $2)
              on conflict (name) do update set paused = excluded.paused, updated_at = now()",
        )
        .bind(name)
        .bind(paused)
        .execute(&self.pool)
        .await?;
        if !paused {
            // Idle workers may be waiting on this queue's tasks: wake them.
            self.announce();
        }
        let counts: Vec<(String, String, i64)> =
            sqlx::query_as(include_str!("sql/queue_counts.sql"))
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
        let info = super::queue_infos(counts, vec![(name.to_string(), paused)]);
        Ok(info.into_iter().next().expect("the queue just written"))
    }

    async fn resolve_task(&self, id: &IdRef) -> StoreResult<Uuid> {
        self.resolve(
            id,
            "select id from all_tasks where id between $1 and $2 limit 2",
        )
        .await
    }

    async fn get_task(&self, id: Uuid) -> StoreResult<Task> {
        let row = self.batched_reads().call(id).await??;
        row.ok_or(StoreError::NotFound)?.into_task()
    }

    async fn list_tasks(&self, query: &TaskQuery) -> StoreResult<Page<Task>> {
        // Two connections: the total and the page cost a round trip each, and neither waits
        // for the other.
        let (total, rows) = tokio::try_join!(self.count_tasks(query), self.task_page(query))?;
        Ok(Page {
            total,
            items: tasks(rows)?,
        })
    }

    async fn run_task(&self, id: Uuid) -> StoreResult<Task> {
        let mut tx = self.pool.begin().await?;
        // A finished task may have moved to the history; runs change the hot table only.
        sqlx::query("select seedcore_unarchive($1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // The parents first, as for a create (see `lock_parents`).
        sqlx::query(
            "select 1 from tasks p join tasks c on p.id = any(c.depends_on) where c.id = $1 \
             order by p.id for share of p",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let queued: Option<TaskRow> = sqlx::query_as(include_str!("sql/run.sql"))
            .bind(id)
            .bind(names(&TaskStatus::RUNNABLE))
            .bind(names(&PARENT_DONE))
            .bind(names(&PARENT_DONE_ON_FAILURE))
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        match queued {
            Some(row) => row.into_task(),
            None => self.get_task(id).await,
        }
    }

    async fn cancel_task(&self, id: Uuid) -> StoreResult<Task> {
        let cancelled: Option<TaskRow> = sqlx::query_as(
            r"update tasks
              set status = 'cancelled', finished_at = now(), lease_token = null,
                  lease_expires_at = null, updated_at = now()
              where id = $1 and status = any($2)
              returning *",
        )
        .bind(id)
        .bind(names(&TaskStatus::CANCELLABLE))
        .fetch_optional(&self.pool)
        .await?;
        match cancelled {
            Some(row) => row.into_task(),
            None => self.get_task(id).await,
        }
    }

    async fn task_events(&self, id: Uuid) -> StoreResult<Vec<TaskEvent>> {
        let rows: Vec<EventRow> =
            sqlx::query_as("select * from all_task_events where task_id = $1 order by seq")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    async fn get_tasks(&self, ids: &[Uuid]) -> StoreResult<Vec<Task>> {
        let rows: Vec<TaskRow> = sqlx::query_as("select * from all_tasks where id = any($1)")
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        tasks(rows)
    }

    async fn create_workflow(&self, plan: WorkflowPlan) -> StoreResult<Workflow> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("insert into workflows (id, name) values ($1, $2)")
            .bind(plan.id)
            .bind(&plan.name)
            .execute(&mut *tx)
            .await?;
        let starts = super::starts(&plan.tasks, &Default::default())?;
        for (chunk, starts) in plan
            .tasks
            .chunks(IMPORT_CHUNK)
            .zip(starts.chunks(IMPORT_CHUNK))
        {
            insert_tasks(chunk.iter().zip(starts))
                .build()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.announce();
        self.get_workflow(plan.id).await
    }

    async fn get_workflow(&self, id: Uuid) -> StoreResult<Workflow> {
        let (name, created_at): (String, DateTime<Utc>) =
            sqlx::query_as("select name, created_at from workflows where id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        let rows: Vec<TaskRow> =
            sqlx::query_as("select * from all_tasks where workflow_id = $1 order by seq")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        Ok(Workflow::new(id, name, created_at, tasks(rows)?))
    }

    async fn list_workflows(&self, limit: i64, offset: i64) -> StoreResult<Page<WorkflowSummary>> {
        let total: i64 = sqlx::query_scalar("select count(*) from workflows")
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<(Uuid, String, DateTime<Utc>, Json<BTreeMap<String, i64>>)> =
            sqlx::query_as(include_str!("sql/workflows.sql"))
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
        let items = rows
            .into_iter()
            .map(|(id, name, at, counts)| WorkflowSummary::new(id, name, at, counts.0))
            .collect();
        Ok(Page { total, items })
    }

    async fn cancel_workflow(&self, id: Uuid) -> StoreResult<Workflow> {
        sqlx::query(
            r"update tasks
              set status = 'cancelled', finished_at = now(), lease_token = null,
                  lease_expires_at = null, updated_at = now()
              where workflow_id = $1 and status = any($2)",
        )
        .bind(id)
        .bind(names(&TaskStatus::CANCELLABLE))
        .execute(&self.pool)
        .await?;
        self.get_workflow(id).await
    }

    async fn claim_tasks(&self, claim: &Claim) -> StoreResult<Vec<ClaimedTask>> {
        let rows: Vec<TaskRow> = sqlx::query_as(include_str!("sql/claim.sql"))
            .bind(&claim.worker_id)
            .bind(claim.limit)
            .bind(claim.drift.at_least)
            .bind(claim.drift.below)
            .bind(claim.lease.as_secs_f64())
            .bind(&claim.queues)
            .bind(&claim.exclude_queues)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TaskRow::into_claimed).collect()
    }

    async fn finish_attempts(&self, batch: &[(Lease, Outcome)]) -> StoreResult<Vec<Lease>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let columns = FinishColumns::from(batch);
        let recorded: Vec<(Uuid, Uuid)> = sqlx::query_as(include_str!("sql/finish.sql"))
            .bind(&columns.ids)
            .bind(&columns.tokens)
            .bind(&columns.statuses)
            .bind(&columns.results)
            .bind(&columns.errors)
            .bind(&columns.run_ats)
            .fetch_all(&self.pool)
            .await?;
        Ok(leases(recorded))
    }

    async fn renew_leases(&self, held: &[Lease], lease: Duration) -> StoreResult<Vec<Lease>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) =
            held.iter().map(|l| (l.task_id, l.token)).unzip();
        let renewed: Vec<(Uuid, Uuid)> = sqlx::query_as(include_str!("sql/renew_leases.sql"))
            .bind(&ids)
            .bind(&tokens)
            .bind(lease.as_secs_f64())
            .fetch_all(&self.pool)
            .await?;
        Ok(leases(renewed))
    }

    async fn release(&self, held: &[Lease]) -> StoreResult<u64> {
        if held.is_empty() {
            return Ok(0);
        }
        let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) =
            held.iter().map(|l| (l.task_id, l.token)).unzip();
        let released = sqlx::query(include_str!("sql/release.sql"))
            .bind(&ids)
            .bind(&tokens)
            .execute(&self.pool)
            .await?;
        Ok(released.rows_affected())
    }

    async fn rescue_expired(&self) -> StoreResult<u64> {
        let rescued = sqlx::query(include_str!("sql/rescue_expired.sql"))
            .execute(&self.pool)
            .await?;
        Ok(rescued.rows_affected())
    }

    async fn register_worker(&self, worker: &Worker) -> StoreResult<()> {
        sqlx::query(
            r"insert into workers (id, host, pid, version, concurrency, escalated_concurrency,
                                   lease_seconds, started_at, last_seen_at)
              values ($1, $2, $3, $4, $5, $6, $7, now(), now())
              on conflict (id) do update
              set last_seen_at = now(), stopped_at = null",
        )
        .bind(&worker.id)
        .bind(&worker.host)
        .bind(worker.pid)
        .bind(&worker.version)
        .bind(worker.concurrency)
        .bind(worker.escalated_concurrency)
        .bind(worker.lease_seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn worker_seen(&self, id: &str) -> StoreResult<()> {
        sqlx::query("update workers set last_seen_at = now() where id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn worker_stopped(&self, id: &str) -> StoreResult<()> {
        sqlx::query("update workers set stopped_at = now(), last_seen_at = now() where id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_workers(&self) -> StoreResult<Vec<Worker>> {
        sqlx::query("delete from workers where last_seen_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await?;
        let rows: Vec<WorkerRow> =
            sqlx::query_as("select * from workers order by started_at desc, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(Worker::from).collect())
    }

    async fn import_facts(&self, facts: &[Fact]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in facts.chunks(IMPORT_CHUNK) {
            let mut insert = QueryBuilder::new(
                "insert into facts (id, text, tags, meta_data, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, fact| {
                row.push_bind(fact.id)
                    .push_bind(fact.text.clone())
                    .push_bind(fact.tags.clone())
                    .push_bind(Json(fact.meta_data.clone()))
                    .push_bind(fact.created_at)
                    .push_bind(fact.updated_at);
            });
            insert.push(" on conflict (id) do nothing");
            inserted += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn import_tasks(&self, tasks: &[LegacyTask]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // The conflict clause below sees the hot table only; moved tasks are skipped here.
        let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
        let archived: std::collections::HashSet<Uuid> =
            sqlx::query_scalar("select id from task_history where id = any($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let tasks: Vec<&LegacyTask> = tasks.iter().filter(|t| !archived.contains(&t.id)).collect();
        let mut inserted = 0;
        for chunk in tasks.chunks(IMPORT_CHUNK) {
            let mut insert = QueryBuilder::new(
                "insert into tasks (id, type, description, params, status, result, error, \
                 attached_fact_ids, created_at, updated_at, run_at, finished_at) ",
            );
            insert.push_values(chunk, |mut row, task| {
                row.push_bind(task.id)
                    .push_bind(task.task_type.clone())
                    .push_bind(task.description.clone())
                    .push_bind(Json(task.params.clone()))
                    .push_bind(task.status.as_str())
                    .push_bind(task.result.clone().map(Json))
                    .push_bind(task.error.clone())
                    .push_bind(task.attached_fact_ids.clone())
                    .push_bind(task.created_at)
                    .push_bind(task.updated_at)
                    .push_bind(task.updated_at)
                    .push_bind(task.status.is_final().then_some(task.updated_at));
            });
            insert.push(" on conflict (id) do nothing");
            inserted += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        if tasks.iter().any(|t| t.status == TaskStatus::Queued) {
            self.announce();
        }
        Ok(inserted)
    }

    async fn stored_ids(&self, kind: RecordKind, ids: &[Uuid]) -> StoreResult<Vec<Uuid>> {
        let sql = match kind {
            RecordKind::Task => "select id from all_tasks where id = any($1)",
            RecordKind::Fact => "select id from facts where id = any($1)",
        };
        Ok(sqlx::query_scalar(sql)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn create_fact(&self, fact: NewFact) -> StoreResult<Fact> {
        let row = self.batched_fact_creates().call(fact).await??;
        Ok(row.into())
    }

    async fn resolve_fact(&self, id: &IdRef) -> StoreResult<Uuid> {
        self.resolve(
            id,
            "select id from facts where id between $1 and $2 limit 2",
        )
        .await
    }

    async fn get_fact(&self, id: Uuid) -> StoreResult<Fact> {
        let row: Option<FactRow> = sqlx::query_as(
            "select id, text, tags, meta_data, created_at, updated_at from facts where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.ok_or(StoreError::NotFound)?.into())
    }

    async fn list_facts(&self, query: &FactQuery) -> StoreResult<Page<Fact>> {
        let page = self.search_facts(query).await?;
        Ok(Page {
            total: page.total.unwrap_or_default(),
            items: page.items.into_iter().map(|(fact, _)| fact).collect(),
        })
    }

    async fn search_facts(&self, query: &FactQuery) -> StoreResult<FactPage> {
        // Two connections: the total and the page cost a round trip each, and neither waits
        // for the other.
        let ((total, total_estimated), rows) =
            tokio::try_join!(self.count_facts(query), self.fact_page(query))?;
        let full = rows.len() as i64 == query.limit;
        let items: Vec<(Fact, Option<f32>)> = rows
            .into_iter()
            .map(|row| (Fact::from(row.fact), row.rank))
            .collect();
        let next_cursor = (full && query.search.is_none())
            .then(|| items.last().map(|(fact, _)| FactCursor::after(fact)))
            .flatten();
        Ok(FactPage {
            total,
            total_estimated,
            items,
            next_cursor,
        })
    }

    async fn create_facts(&self, facts: Vec<NewFact>) -> StoreResult<Vec<Fact>> {
        if facts.is_empty() {
            return Ok(Vec::new());
        }
        let mut insert = QueryBuilder::new("insert into facts as f (id, text, tags, meta_data) ");
        insert.push_values(facts, |mut row, fact| {
            row.push_bind(Uuid::new_v4())
                .push_bind(fact.text)
                .push_bind(fact.tags)
                .push_bind(Json(fact.meta_data));
        });
        insert.push(" returning ").push(FACT_COLUMNS);
        let rows: Vec<FactRow> = insert.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(Fact::from).collect())
    }

    async fn set_search_language(&self, language: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let current: String = sqlx::query_scalar(
            "select value from seedcore_settings where key = 'fts_language' for update",
        )
        .fetch_one(&mut *tx)
        .await?;
        if current == language {
            return Ok(false);
        }
        // Fails with "text search configuration ... does not exist" for an unknown language.
        sqlx::query(
            "update seedcore_settings set value = $1::regconfig::text where key = 'fts_language'",
        )
        .bind(language)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            r"update fact_vectors v
              set search_vector = seedcore_fact_vector($1::regconfig, f.text, f.meta_data)
              from facts f where f.id = v.id",
        )
        .bind(language)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn tag_counts(&self, prefix: Option<&str>, limit: i64) -> StoreResult<Vec<TagCount>> {
        let pattern = prefix.map(|p| format!("{}%", like_literal(p)));
        let rows: Vec<(String, i64)> = sqlx::query_as(
            r"select tag, count(*) from facts, unnest(tags) as tag
              where $1::text is null or tag like $1 escape ''
              group by tag order by count(*) desc, tag limit $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(tag, count)| TagCount { tag, count })
            .collect())
    }

    async fn prune_finished(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        let mut deleted = 0;
        // The history holds the oldest; the hot table's turn comes when it has fewer.
        for sql in [
            include_str!("sql/prune_history.sql"),
            include_str!("sql/prune.sql"),
        ] {
            let left = limit - deleted as i64;
            if left <= 0 {
                break;
            }
            deleted += sqlx::query(sql)
                .bind(cutoff)
                .bind(left)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        if deleted > 0 {
            // Workflows whose tasks were all pruned go too.
            sqlx::query(
                "delete from workflows w where w.created_at < $1 \
                 and not exists (select 1 from all_tasks t where t.workflow_id = w.id)",
            )
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        }
        Ok(deleted)
    }

    async fn archive_finished(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        let moved: i64 = sqlx::query_scalar("select seedcore_archive($1, $2)")
            .bind(cutoff)
            .bind(limit)
            .fetch_one(&self.pool)
            .await?;
        Ok(moved as u64)
    }

    async fn fold_counters(&self) -> StoreResult<u64> {
        let folded: i64 = sqlx::query_scalar("select seedcore_fold_counters()")
            .fetch_one(&self.pool)
            .await?;
        Ok(folded as u64)
    }

    async fn update_fact(&self, id: Uuid, patch: FactPatch) -> StoreResult<Fact> {
        if patch.is_empty() {
            return self.get_fact(id).await;
        }
        let mut update = QueryBuilder::<Postgres>::new("update facts set updated_at = now()");
        if let Some(text) = &patch.text {
            update.push(", text = ").push_bind(text);
        }
        if let Some(tags) = &patch.tags {
            update.push(", tags = ").push_bind(tags);
        }
        if let Some(meta_data) = &patch.meta_data {
            update.push(", meta_data = ").push_bind(Json(meta_data));
        }
        update
            .push(" where id = ")
            .push_bind(id)
            .push(" returning *");
        let row: Option<FactRow> = update.build_query_as().fetch_optional(&self.pool).await?;
        Ok(row.ok_or(StoreError::NotFound)?.into())
    }

    async fn delete_fact(&self, id: Uuid) -> StoreResult<()> {
        let deleted = sqlx::query("delete from facts where id = $1")
            .bind(id)
            .execute(&self.pool)
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
