//! New tasks and queues on SQLite: create (one, with its idempotency key, or many in one
//! transaction), and the queue list and pause switch.

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::{SqliteStore, TaskRow, json_text, stamp};
use crate::{
    model::{NewTask, QueueInfo, Task, TaskStatus},
    store::{Signal, StoreResult, queue_infos},
};

/// Rows per insert statement (SQLite limits bind parameters per statement).
pub(super) const CHUNK: usize = 500;

/// A new task's columns as SQLite stores them.
pub(super) struct Columns {
    task: NewTask,
    params: String,
    attached: String,
}

pub(super) fn columns(task: NewTask) -> StoreResult<Columns> {
    Ok(Columns {
        params: json_text(&task.params)?,
        attached: json_text(&task.attached_fact_ids)?,
        task,
    })
}

pub(super) fn insert(rows: &[Columns], now: &str) -> QueryBuilder<Sqlite> {
    let mut insert = QueryBuilder::new(
        "insert into tasks (id, type, description, params, domain, drift_score, status, \
         max_attempts, timeout_seconds, attached_fact_ids, queue, priority, idempotency_key, \
         run_at, created_at, updated_at) ",
    );
    insert.push_values(rows, |mut row, columns| {
        let task = &columns.task;
        row.push_bind(Uuid::new_v4().to_string())
            .push_bind(task.task_type.clone())
            .push_bind(task.description.clone())
            .push_bind(columns.params.clone())
            .push_bind(task.domain.clone())
            .push_bind(task.drift_score)
            .push_bind(task.initial_status().as_str())
            .push_bind(task.max_attempts)
            .push_bind(task.timeout_seconds)
            .push_bind(columns.attached.clone())
            .push_bind(task.queue.clone())
            .push_bind(task.priority)
            .push_bind(task.idempotency_key.clone())
            .push_bind(task.run_at.map_or_else(|| now.to_string(), stamp))
            .push_bind(now.to_string())
            .push_bind(now.to_string());
    });
    insert
}

pub(super) async fn create_one(store: &SqliteStore, task: NewTask) -> StoreResult<Task> {
    let key = task.idempotency_key.clone();
    let rows = [columns(task)?];
    let mut insert = insert(&rows, &stamp(Utc::now()));
    insert.push(
        " on conflict (idempotency_key) where idempotency_key is not null do nothing returning *",
    );
    let row: Option<TaskRow> = insert
        .build_query_as()
        .fetch_optional(&store.writer)
        .await?;
    let task = match row {
        Some(row) => row.into_task()?,
        None => {
            let existing: TaskRow =
                sqlx::query_as("select * from tasks where idempotency_key = ?1")
                    .bind(key)
                    .fetch_one(&store.writer)
                    .await?;
            return existing.into_task();
        }
    };
    if task.status == TaskStatus::Queued {
        store.watchers.send(Signal::TasksReady);
    }
    Ok(task)
}

pub(super) async fn create_many(
    store: &SqliteStore,
    tasks: Vec<NewTask>,
) -> StoreResult<Vec<Task>> {
    let rows = tasks
        .into_iter()
        .map(columns)
        .collect::<StoreResult<Vec<_>>>()?;
    let now = stamp(Utc::now());
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let mut created = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        created.extend(insert_chunk(&mut tx, chunk, &now).await?);
    }
    tx.commit().await?;
    if created.iter().any(|t| t.status == TaskStatus::Queued) {
        store.watchers.send(Signal::TasksReady);
    }
    Ok(created)
}

async fn insert_chunk(
    conn: &mut SqliteConnection,
    chunk: &[Columns],
    now: &str,
) -> StoreResult<Vec<Task>> {
    let mut insert = insert(chunk, now);
    insert.push(" returning *");
    let rows: Vec<TaskRow> = insert.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(TaskRow::into_task).collect()
}

pub(super) async fn list_queues(store: &SqliteStore) -> StoreResult<Vec<QueueInfo>> {
    let counts: Vec<(String, String, i64)> =
        sqlx::query_as("select queue, status, count(*) from tasks group by queue, status")
            .fetch_all(&store.reader)
            .await?;
    let paused: Vec<(String, bool)> = sqlx::query_as("select name, paused from queues")
        .fetch_all(&store.reader)
        .await?;
    Ok(queue_infos(counts, paused))
}

pub(super) async fn set_paused(
    store: &SqliteStore,
    name: &str,
    paused: bool,
) -> StoreResult<QueueInfo> {
    sqlx::query(
        r"insert into queues (name, paused, updated_at) values (?1, ?2, ?3)
          on conflict (name) do update set paused = excluded.paused, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(paused)
    .bind(stamp(Utc::now()))
    .execute(&store.writer)
    .await?;
    if !paused {
        store.watchers.send(Signal::TasksReady);
    }
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "select queue, status, count(*) from tasks where queue = ?1 group by queue, status",
    )
    .bind(name)
    .fetch_all(&store.writer)
    .await?;
    let info = queue_infos(counts, vec![(name.to_string(), paused)]);
    Ok(info.into_iter().next().expect("the queue just written"))
}
