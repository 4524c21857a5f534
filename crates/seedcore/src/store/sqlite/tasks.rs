//! Tasks on SQLite: creating them (one, with its idempotency key, or many in one
//! transaction), reading, listing, running, cancelling, and their event trails.
//!
//! A task with parents is written with its edges in `task_dependencies`, in the transaction
//! that read its parents' statuses; the single writer connection means no parent can finish in
//! between.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::{
    EventRow, SqliteStore, TaskRow,
    counting::count_matches,
    rows::{json_text, parse_id, stamp},
    task_filters::{Indexes, push_task_filters},
};
use crate::model::transition::{Event, PARENT_DONE, PARENT_DONE_ON_FAILURE, names, transition};
use crate::model::{Actor, IdRef, NewTask, Task, TaskEvent, TaskStatus};
use crate::store::{
    Signal, StoreError, StoreResult, TaskPage, TaskQuery,
    parents::{parents_of, starts},
    rows::{parse_status, tasks},
};

/// A key in use (perhaps by an earlier create) leaves the first task in place.
pub(super) const KEEP_FIRST: &str =
    " on conflict (idempotency_key) where idempotency_key is not null do nothing returning *";

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
         created_at, updated_at, actor, traceparent) ",
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
            .push_bind(now.to_string())
            .push_bind(task.actor.as_ref().map(|a| a.as_str().to_owned()))
            .push_bind(task.traceparent.clone());
    });
    insert
}

pub(super) async fn create(store: &SqliteStore, task: NewTask) -> StoreResult<Task> {
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
    insert.push(KEEP_FIRST);
    // Read to the end: alone (no parents) this is its own transaction, and a commit that
    // fails must be seen (see the module docs of the store).
    let row = insert.build_query_as().fetch_all(&mut *conn).await?.pop();
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

/// Inserts the tasks in chunks, each starting as its parents say, with their parent edges.
pub(super) async fn insert_all(
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

pub(super) async fn resolve(store: &SqliteStore, id: &IdRef) -> StoreResult<Uuid> {
    store
        .resolve(
            id,
            "select id from tasks where id between ?1 and ?2 limit 2",
        )
        .await
}

pub(super) async fn get(store: &SqliteStore, id: Uuid) -> StoreResult<Task> {
    let row: Option<TaskRow> = sqlx::query_as("select * from tasks where id = ?1")
        .bind(id.to_string())
        .fetch_optional(&store.reader)
        .await?;
    row.ok_or(StoreError::NotFound)?.into_task()
}

pub(super) async fn get_many(store: &SqliteStore, ids: &[Uuid]) -> StoreResult<Vec<Task>> {
    let rows: Vec<TaskRow> =
        sqlx::query_as("select * from tasks where id in (select value from json_each(?1))")
            .bind(json_text(&ids)?)
            .fetch_all(&store.reader)
            .await?;
    tasks(rows)
}

pub(super) async fn list(store: &SqliteStore, query: &TaskQuery) -> StoreResult<TaskPage> {
    let total = count_matches(store, query.count, |matches| {
        matches.push(" from tasks");
        push_where(matches, query);
        Ok(())
    })
    .await?;
    let (column, direction) = (query.sort.column(), query.sort.direction());
    let mut list = QueryBuilder::new("select * from tasks");
    push_where(&mut list, query);
    if let Some(cursor) = &query.cursor {
        list.push(format_args!(" and ({column}, id) {} (", query.sort.past()))
            .push_bind(stamp(cursor.at))
            .push(", ")
            .push_bind(cursor.id.to_string())
            .push(")");
    }
    list.push(format_args!(
        " order by {column} {direction}, id {direction} limit "
    ))
    .push_bind(query.limit)
    .push(" offset ")
    .push_bind(query.offset);
    let rows: Vec<TaskRow> = list.build_query_as().fetch_all(&store.reader).await?;
    Ok(TaskPage::new(query, total, tasks(rows)?))
}

/// The list's `where` clause: the status and the filters shared with bulk actions.
fn push_where(builder: &mut QueryBuilder<Sqlite>, query: &TaskQuery) {
    builder.push(" where true");
    if let Some(status) = query.status {
        builder.push(" and status = ").push_bind(status.as_str());
    }
    push_task_filters(builder, &query.filter, Indexes::Any);
}

pub(super) async fn run(store: &SqliteStore, id: Uuid, actor: &Actor) -> StoreResult<Task> {
    let queued: Option<TaskRow> = sqlx::query_as(include_str!("sql/run.sql"))
        .bind(id.to_string())
        .bind(stamp(Utc::now()))
        .bind(json_text(&names(&TaskStatus::RUNNABLE))?)
        .bind(json_text(&names(&PARENT_DONE))?)
        .bind(json_text(&names(&PARENT_DONE_ON_FAILURE))?)
        .bind(actor.as_str())
        .fetch_all(&store.writer)
        .await?
        .pop();
    match queued {
        Some(row) => {
            store.watchers.send(Signal::TasksReady);
            row.into_task()
        }
        None => get(store, id).await,
    }
}

pub(super) async fn cancel(store: &SqliteStore, id: Uuid, actor: &Actor) -> StoreResult<Task> {
    // Reading the status first, in the same write transaction, tells whether a worker
    // must be told to stop: `returning` sees only the new row.
    let mut tx = store.writer.begin_with("begin immediate").await?;
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
              lease_expires_at = null, updated_at = ?2, actor = ?3
          where id = ?1
          returning *",
    )
    .bind(id.to_string())
    .bind(stamp(Utc::now()))
    .bind(actor.as_str())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    if was == TaskStatus::Running {
        store.watchers.send(Signal::Cancelled(id));
    }
    store.settled();
    cancelled.into_task()
}

pub(super) async fn events(store: &SqliteStore, id: Uuid) -> StoreResult<Vec<TaskEvent>> {
    let rows: Vec<EventRow> =
        sqlx::query_as("select * from task_events where task_id = ?1 order by seq")
            .bind(id.to_string())
            .fetch_all(&store.reader)
            .await?;
    rows.into_iter().map(EventRow::into_event).collect()
}
