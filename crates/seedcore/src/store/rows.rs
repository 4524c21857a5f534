//! Rows as both backends read them, decoded once into the model's types.
//!
//! The two dialects store the same columns; only ids, times, JSON and lists differ in kind
//! (native `uuid`, `timestamptz`, `jsonb` and arrays on PostgreSQL; text on SQLite). A
//! backend says how it stores those four kinds by implementing [`Dialect`]; each row type is
//! generic over it, so the column lists and their conversions are written here only.
//! Invariant: a value that does not decode is [`StoreError::Corrupt`], never a panic.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ClaimedTask, Lease, StoreError, StoreResult};
use crate::model::{
    Actor, Fact, MisfirePolicy, Schedule, Task, TaskEvent, TaskStatus, TaskTemplate, Worker,
};
use uuid::Uuid;

/// How a backend stores the column kinds that differ between dialects, and how each decodes.
pub(crate) trait Dialect {
    /// An id column.
    type Id: Clone + Send + Unpin;
    /// A timestamp column.
    type Time: Clone + Send + Unpin;
    /// A JSON column holding a `T`.
    type Json<T>: Clone + Send + Unpin
    where
        T: Clone + Send + Unpin;
    /// A column holding a list of `T`.
    type List<T>: Clone + Send + Unpin
    where
        T: Clone + Send + Unpin;

    /// The id a column holds.
    fn id(value: Self::Id) -> StoreResult<Uuid>;
    /// The instant a column holds.
    fn time(value: Self::Time) -> StoreResult<DateTime<Utc>>;
    /// The value a JSON column holds.
    fn json<T>(value: Self::Json<T>) -> StoreResult<T>
    where
        T: DeserializeOwned + Clone + Send + Unpin;
    /// The items a list column holds.
    fn list<T>(value: Self::List<T>) -> StoreResult<Vec<T>>
    where
        T: DeserializeOwned + Clone + Send + Unpin;
}

/// A task status as stored.
pub(crate) fn parse_status(text: &str) -> StoreResult<TaskStatus> {
    TaskStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown status '{text}'")))
}

/// An optional column, decoded when present.
fn maybe<A, B>(
    value: Option<A>,
    decode: impl FnOnce(A) -> StoreResult<B>,
) -> StoreResult<Option<B>> {
    value.map(decode).transpose()
}

/// A `tasks` row (or one of `all_tasks`, on PostgreSQL).
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct TaskRow<D: Dialect> {
    pub id: D::Id,
    #[sqlx(rename = "type")]
    task_type: String,
    description: String,
    params: D::Json<Value>,
    domain: Option<String>,
    drift_score: f64,
    pub status: String,
    result: Option<D::Json<Value>>,
    error: Option<String>,
    created_at: D::Time,
    updated_at: D::Time,
    attempts: i32,
    max_attempts: i32,
    timeout_seconds: Option<f64>,
    run_at: D::Time,
    started_at: Option<D::Time>,
    finished_at: Option<D::Time>,
    worker_id: Option<String>,
    lease_token: Option<D::Id>,
    attached_fact_ids: D::List<Uuid>,
    queue: String,
    priority: i32,
    idempotency_key: Option<String>,
    depends_on: D::List<Uuid>,
    run_on_failure: bool,
    workflow_id: Option<D::Id>,
    workflow_key: Option<String>,
    // Absent from rows read with an explicit column list.
    #[sqlx(default)]
    traceparent: Option<String>,
    #[sqlx(default)]
    progress: Option<f64>,
}

impl<D: Dialect> TaskRow<D> {
    pub fn into_task(self) -> StoreResult<Task> {
        Ok(Task {
            id: D::id(self.id)?,
            task_type: self.task_type,
            description: self.description,
            params: D::json(self.params)?,
            domain: self.domain,
            drift_score: self.drift_score,
            status: parse_status(&self.status)?,
            result: maybe(self.result, D::json)?,
            error: self.error,
            created_at: D::time(self.created_at)?,
            updated_at: D::time(self.updated_at)?,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            timeout_seconds: self.timeout_seconds,
            run_at: D::time(self.run_at)?,
            started_at: maybe(self.started_at, D::time)?,
            finished_at: maybe(self.finished_at, D::time)?,
            worker_id: self.worker_id,
            attached_fact_ids: D::list(self.attached_fact_ids)?,
            queue: self.queue,
            priority: self.priority,
            idempotency_key: self.idempotency_key,
            depends_on: D::list(self.depends_on)?,
            run_on_failure: self.run_on_failure,
            workflow_id: maybe(self.workflow_id, D::id)?,
            workflow_key: self.workflow_key,
            progress: self.progress,
        })
    }

    pub fn into_claimed(mut self) -> StoreResult<ClaimedTask> {
        let token = self
            .lease_token
            .take()
            .ok_or_else(|| StoreError::Corrupt("claimed task without a lease token".into()))?;
        let token = D::id(token)?;
        let traceparent = self.traceparent.take();
        let task = self.into_task()?;
        Ok(ClaimedTask {
            lease: Lease {
                task_id: task.id,
                token,
            },
            task,
            traceparent,
        })
    }
}

/// Tasks from their rows.
pub(crate) fn tasks<D: Dialect>(rows: Vec<TaskRow<D>>) -> StoreResult<Vec<Task>> {
    rows.into_iter().map(TaskRow::into_task).collect()
}

/// A `facts` row.
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct FactRow<D: Dialect> {
    pub id: D::Id,
    text: String,
    tags: D::List<String>,
    meta_data: D::Json<Value>,
    created_at: D::Time,
    updated_at: D::Time,
}

impl<D: Dialect> FactRow<D> {
    pub fn into_fact(self) -> StoreResult<Fact> {
        Ok(Fact {
            id: D::id(self.id)?,
            text: self.text,
            tags: D::list(self.tags)?,
            meta_data: D::json(self.meta_data)?,
            created_at: D::time(self.created_at)?,
            updated_at: D::time(self.updated_at)?,
        })
    }
}

/// Facts from their rows.
pub(crate) fn facts<D: Dialect>(rows: Vec<FactRow<D>>) -> StoreResult<Vec<Fact>> {
    rows.into_iter().map(FactRow::into_fact).collect()
}

/// A `workers` row.
#[derive(sqlx::FromRow)]
pub(crate) struct WorkerRow<D: Dialect> {
    id: String,
    host: String,
    pid: i32,
    version: String,
    concurrency: i32,
    escalated_concurrency: i32,
    lease_seconds: f64,
    started_at: D::Time,
    last_seen_at: D::Time,
    stopped_at: Option<D::Time>,
}

impl<D: Dialect> WorkerRow<D> {
    pub fn into_worker(self) -> StoreResult<Worker> {
        Ok(Worker {
            id: self.id,
            host: self.host,
            pid: self.pid,
            version: self.version,
            concurrency: self.concurrency,
            escalated_concurrency: self.escalated_concurrency,
            lease_seconds: self.lease_seconds,
            started_at: D::time(self.started_at)?,
            last_seen_at: D::time(self.last_seen_at)?,
            stopped_at: maybe(self.stopped_at, D::time)?,
        })
    }
}

/// A `task_events` row.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow<D: Dialect> {
    seq: i64,
    task_id: D::Id,
    at: D::Time,
    kind: String,
    from_status: Option<String>,
    to_status: String,
    attempt: i32,
    worker_id: Option<String>,
    error: Option<String>,
    actor: Option<String>,
}

impl<D: Dialect> EventRow<D> {
    pub fn into_event(self) -> StoreResult<TaskEvent> {
        Ok(TaskEvent {
            seq: self.seq,
            task_id: D::id(self.task_id)?,
            at: D::time(self.at)?,
            kind: self.kind,
            from_status: self.from_status.as_deref().map(parse_status).transpose()?,
            to_status: parse_status(&self.to_status)?,
            attempt: self.attempt,
            worker_id: self.worker_id,
            error: self.error,
            actor: self.actor.map(Actor::from_stored),
        })
    }
}

/// A `schedules` row.
#[derive(sqlx::FromRow)]
pub(crate) struct ScheduleRow<D: Dialect> {
    id: D::Id,
    name: String,
    cron: String,
    timezone: String,
    task_type: String,
    params: D::Json<Map<String, Value>>,
    description: String,
    domain: Option<String>,
    queue: String,
    priority: i32,
    max_attempts: i32,
    timeout_seconds: Option<f64>,
    drift_score: f64,
    enabled: bool,
    misfire_policy: String,
    next_fire_at: Option<D::Time>,
    last_fire_at: Option<D::Time>,
    last_task_id: Option<D::Id>,
    created_at: D::Time,
    updated_at: D::Time,
}

impl<D: Dialect> ScheduleRow<D> {
    pub fn into_schedule(self) -> StoreResult<Schedule> {
        let misfire_policy = MisfirePolicy::parse(&self.misfire_policy).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown misfire policy '{}'", self.misfire_policy))
        })?;
        Ok(Schedule {
            id: D::id(self.id)?,
            name: self.name,
            cron: self.cron,
            timezone: self.timezone,
            task: TaskTemplate {
                task_type: self.task_type,
                params: D::json(self.params)?,
                description: self.description,
                domain: self.domain,
                queue: self.queue,
                priority: self.priority,
                max_attempts: self.max_attempts,
                timeout_seconds: self.timeout_seconds,
                drift_score: self.drift_score,
            },
            enabled: self.enabled,
            misfire_policy,
            next_fire_at: maybe(self.next_fire_at, D::time)?,
            last_fire_at: maybe(self.last_fire_at, D::time)?,
            last_task_id: maybe(self.last_task_id, D::id)?,
            created_at: D::time(self.created_at)?,
            updated_at: D::time(self.updated_at)?,
        })
    }
}

/// Schedules from their rows.
pub(crate) fn schedules<D: Dialect>(rows: Vec<ScheduleRow<D>>) -> StoreResult<Vec<Schedule>> {
    rows.into_iter().map(ScheduleRow::into_schedule).collect()
}
