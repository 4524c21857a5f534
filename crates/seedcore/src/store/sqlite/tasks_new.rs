//! New tasks, workflows and queues on SQLite: create (one, with its idempotency key, or many in
//! one transaction, or a workflow's), and the queue list and pause switch.
//!
//! A task with parents is written with its edges in `task_dependencies`, in the transaction
//! that read its parents' statuses; the single writer connection means no parent can finish in
//! between.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::{SqliteStore, TaskRow, json_text, parse_id, parse_status, stamp};
use crate::{
    model::{NewTask, QueueInfo, Task, TaskStatus, Workflow, WorkflowPlan},
    store::{Signal, StoreResult, parents_of, queue_infos, starts},
};

/// Rows per insert statement (SQLite limits bind parameters per statement).
pub(super) const CHUNK: usize = 500;

/// A new task's columns as SQLite stores them, with the status and error it starts with.
pub(super) struct Columns {
    task: NewTask,
    params: String,
    attached: String,
    depends_on: String,
    status: TaskStatus,
    error: Option<String>,
}

fn columns(task: NewTask, (status, error): (TaskStatus, Option<String>)) -> StoreResult<Columns> {
    Ok(Columns {
        params: json_text(&task.params)?,
        attached: json_text(&task.attached_fact_ids)?,
        depends_on: json_text(&task.depends_on)?,
        task,
        status,
        error,
    })
}

/// The tasks' columns, each starting as its parents' statuses (read in the caller's
/// transaction, or none for tasks without parents) say.
pub(super) async fn columns_of(
    conn: &mut SqliteConnection,
    tasks: Vec<NewTask>,
) -> StoreResult<Vec<Columns>> {
    let starts = starts(&tasks, &parent_statuses(conn, &tasks).await?)?;
    tasks
        .into_iter()
        .zip(starts)
        .map(|(task, start)| columns(task, start))
        .collect()
}

async fn parent_statuses(
    conn: &mut SqliteConnection,
    tasks: &[NewTask],
) -> StoreResult<HashMap<Uuid, TaskStatus>> {
    let ids = parents_of(tasks);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select id, status from tasks where id in (select value from json_each(?1))",
    )
    .bind(json_text(&ids)?)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|(id, status)| Ok((parse_id(id)?, parse_status(status)?)))
        .collect()
}

pub(super) fn insert(rows: &[Columns], now: &str) -> QueryBuilder<Sqlite> {
    let mut insert = QueryBuilder::new(
        "insert into tasks (id, type, description, params, domain, drift_score, status, error, \
         max_attempts, timeout_seconds, attached_fact_ids, queue, priority, idempotency_key, \
         depends_on, run_on_failure, workflow_id, workflow_key, finished_at, run_at, \
         created_at, updated_at) ",
    );
    insert.push_values(rows, |mut row, columns| {
        let task = &columns.task;
        row.push_bind(task.id.to_string())
            .push_bind(task.task_type.clone())
            .push_bind(task.description.clone())
            .push_bind(columns.params.clone())
            .push_bind(task.domain.clone())
            .push_bind(task.drift_score)
            .push_bind(columns.status.as_str())
            .push_bind(columns.error.clone())
            .push_bind(task.max_attempts)
            .push_bind(task.timeout_seconds)
            .push_bind(columns.attached.clone())
            .push_bind(task.queue.clone())
            .push_bind(task.priority)
            .push_bind(task.idempotency_key.clone())
            .push_bind(columns.depends_on.clone())
            .push_bind(task.run_on_failure)
            .push_bind(task.workflow.as_ref().map(|w| w.0.to_string()))
            .push_bind(task.workflow.as_ref().map(|w| w.1.clone()))
            .push_bind(columns.status.is_final().then(|| now.to_string()))
            .push_bind(task.run_at.map_or_else(|| now.to_string(), stamp))
            .push_bind(now.to_string())
            .push_bind(now.to_string());
    });
    insert
}

pub(super) async fn create_one(store: &SqliteStore, task: NewTask) -> StoreResult<Task> {
    let key = task.idempotency_key.clone();
    let now = stamp(Utc::now());
    // A task without parents is one statement, atomic by itself; one with parents is written
    // with its edges in the transaction that read the parents' statuses.
    let row = if task.depends_on.is_empty() {
        let mut conn = store.writer.acquire().await?;
        insert_keeping_first(&mut conn, task, &now).await?.0
    } else {
        let mut tx = store.writer.begin_with("begin immediate").await?;
        let (row, rows) = insert_keeping_first(&mut tx, task, &now).await?;
        if row.is_some() {
            insert_edges(&mut tx, &rows).await?;
        }
        tx.commit().await?;
        row
    };
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
    store.created(std::slice::from_ref(&task));
    Ok(task)
}

/// Inserts the task unless its idempotency key is taken (then None), with the columns written.
async fn insert_keeping_first(
    conn: &mut SqliteConnection,
    task: NewTask,
    now: &str,
) -> StoreResult<(Option<TaskRow>, Vec<Columns>)> {
    let rows = columns_of(conn, vec![task]).await?;
    let mut insert = insert(&rows, now);
    insert.push(
        " on conflict (idempotency_key) where idempotency_key is not null do nothing returning *",
    );
    let row = insert.build_query_as().fetch_optional(&mut *conn).await?;
    Ok((row, rows))
}

pub(super) async fn create_many(
    store: &SqliteStore,
    tasks: Vec<NewTask>,
) -> StoreResult<Vec<Task>> {
    let now = stamp(Utc::now());
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let created = insert_all(&mut tx, tasks, &now).await?;
    tx.commit().await?;
    store.created(&created);
    Ok(created)
}

pub(super) async fn create_workflow(
    store: &SqliteStore,
    plan: WorkflowPlan,
) -> StoreResult<Workflow> {
    let now = stamp(Utc::now());
    let mut tx = store.writer.begin_with("begin immediate").await?;
    sqlx::query("insert into workflows (id, name, created_at) values (?1, ?2, ?3)")
        .bind(plan.id.to_string())
        .bind(&plan.name)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    let created = insert_all(&mut tx, plan.tasks, &now).await?;
    tx.commit().await?;
    store.created(&created);
    super::workflows::get(store, plan.id).await
}

/// Inserts the tasks in chunks, each starting as its parents say, with their parent edges.
async fn insert_all(
    conn: &mut SqliteConnection,
    tasks: Vec<NewTask>,
    now: &str,
) -> StoreResult<Vec<Task>> {
    let rows = columns_of(conn, tasks).await?;
    let mut created = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        created.extend(insert_chunk(conn, chunk, now).await?);
    }
    insert_edges(conn, &rows).await?;
    Ok(created)
}

/// The parent edges of the tasks, for the settle trigger's lookups.
async fn insert_edges(conn: &mut SqliteConnection, rows: &[Columns]) -> StoreResult<()> {
    let edges: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| {
            r.task
                .depends_on
                .iter()
                .map(|p| (r.task.id.to_string(), p.to_string()))
        })
        .collect();
    for chunk in edges.chunks(CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "insert or ignore into task_dependencies (task_id, depends_on) ",
        );
        insert.push_values(chunk, |mut row, (child, parent)| {
            row.push_bind(child.clone()).push_bind(parent.clone());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
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
