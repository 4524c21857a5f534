//! Tasks on PostgreSQL: creating them (one, batched with concurrent creates, or many in one
//! transaction), reading, listing, running, cancelling, and their event trails.
//!
//! Live tasks are in `tasks`, finished ones may have moved to `task_history`: reads go through
//! the views `all_tasks` and `all_task_events`, writes change `tasks`. A task with parents is
//! inserted in the transaction that locked its parents (see [`lock_parents`]).

use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, types::Json};
use uuid::Uuid;

use super::{
    EventRow, IMPORT_CHUNK, PgStore, TaskRow, batched, counting::count_matches,
    task_filters::push_task_filters,
};
use crate::model::transition::{PARENT_DONE, PARENT_DONE_ON_FAILURE, names};
use crate::model::{Actor, IdRef, NewTask, Task, TaskEvent, TaskStatus};
use crate::store::{
    CountMode, Signal, StartSlot, StoreError, StoreResult, TaskPage, TaskQuery,
    parents::{parents_of, starts},
    rows::{parse_status, tasks},
};

/// A key in use (perhaps by a create racing this one) leaves the first task in place.
pub(super) const KEEP_FIRST: &str =
    " on conflict (idempotency_key) where idempotency_key is not null do nothing returning *";

/// An insert of new tasks, each with the status and error it starts with, ready for an
/// `on conflict` or `returning` clause.
pub(super) fn insert_tasks<'a>(
    tasks: impl IntoIterator<Item = (&'a NewTask, &'a (TaskStatus, Option<String>))>,
) -> QueryBuilder<Postgres> {
    let mut insert = QueryBuilder::new(
        "insert into tasks (id, type, description, params, domain, drift_score, status, error, \
         max_attempts, timeout_seconds, attached_fact_ids, queue, priority, idempotency_key, \
         depends_on, run_on_failure, workflow_id, workflow_key, actor, traceparent, \
         finished_at, run_at) ",
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
            .push_bind(task.actor.as_ref().map(|a| a.as_str().to_owned()))
            .push_bind(task.traceparent.clone())
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
) -> StoreResult<HashMap<Uuid, TaskStatus>> {
    let ids = parents_of(tasks);
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

pub(super) async fn create(store: &PgStore, task: NewTask) -> StoreResult<Task> {
    let key = task.idempotency_key.clone();
    // The rarer paths are boxed: their queries' futures are large, and the common path's
    // future is moved into a box on every create.
    let row = if task.depends_on.is_empty() && task.workflow.is_none() {
        create_alone(store, task).await?
    } else {
        Box::pin(create_with_parents(store, task)).await?
    };
    let Some(row) = row else {
        return Box::pin(key_holder(store, key)).await;
    };
    let task = row.into_task()?;
    match task.status {
        // Written claimed by this process's worker, which started it already.
        TaskStatus::Running => Ok(as_created(task)),
        TaskStatus::Queued => {
            store.announce();
            Ok(task)
        }
        _ => Ok(task),
    }
}

/// A task without parents, written with the concurrent ones (see `batched`); None when its
/// idempotency key is in use. When it is ready at once and this process's worker holds a slot
/// for it, it is written as claimed by that worker and started in that slot.
async fn create_alone(store: &PgStore, task: NewTask) -> StoreResult<Option<TaskRow>> {
    let (status, error) = starts(std::slice::from_ref(&task), &Default::default())?.remove(0);
    let create = batched::Create {
        slot: start_slot(store, &task, status),
        task,
        status,
        error,
    };
    store.batched_creates().call(create).await?
}

/// A slot of this process's worker for `task`, when it is ready to run now (the statement
/// checks its queue).
fn start_slot(store: &PgStore, task: &NewTask, status: TaskStatus) -> Option<StartSlot> {
    let due = task.run_at.is_none_or(|at| at <= chrono::Utc::now());
    if status != TaskStatus::Queued || !due {
        return None;
    }
    store
        .local_starter()?
        .reserve(&task.queue, task.drift_score)
}

/// The task as its creation left it, before the worker that started it at once claimed it:
/// what `POST /tasks` answers, as for any create ("the task as stored", `queued`).
fn as_created(task: Task) -> Task {
    Task {
        status: TaskStatus::Queued,
        attempts: 0,
        started_at: None,
        worker_id: None,
        ..task
    }
}

/// A task with parents, or a workflow's step: its start depends on the parents, locked in its
/// own transaction; None when its idempotency key is in use.
async fn create_with_parents(store: &PgStore, task: NewTask) -> StoreResult<Option<TaskRow>> {
    let tasks = std::slice::from_ref(&task);
    let mut tx = store.pool.begin().await?;
    let starts = starts(tasks, &lock_parents(&mut tx, tasks).await?)?;
    let mut insert = insert_tasks(tasks.iter().zip(&starts));
    insert.push(KEEP_FIRST);
    let row = insert.build_query_as().fetch_optional(&mut *tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// The task holding idempotency key `key`.
async fn key_holder(store: &PgStore, key: Option<String>) -> StoreResult<Task> {
    let existing: TaskRow = sqlx::query_as("select * from all_tasks where idempotency_key = $1")
        .bind(key)
        .fetch_one(&store.pool)
        .await?;
    existing.into_task()
}

pub(super) async fn create_many(store: &PgStore, tasks: Vec<NewTask>) -> StoreResult<Vec<Task>> {
    let mut tx = store.pool.begin().await?;
    let starts = starts(&tasks, &lock_parents(&mut tx, &tasks).await?)?;
    let mut created = Vec::with_capacity(tasks.len());
    for (chunk, starts) in tasks.chunks(IMPORT_CHUNK).zip(starts.chunks(IMPORT_CHUNK)) {
        let mut insert = insert_tasks(chunk.iter().zip(starts));
        insert.push(" returning *");
        let rows: Vec<TaskRow> = insert.build_query_as().fetch_all(&mut *tx).await?;
        created.extend(self::tasks(rows)?);
    }
    tx.commit().await?;
    if created.iter().any(|t| t.status == TaskStatus::Queued) {
        store.announce();
    }
    Ok(created)
}

pub(super) async fn resolve(store: &PgStore, id: &IdRef) -> StoreResult<Uuid> {
    store
        .resolve(
            id,
            "select id from all_tasks where id between $1 and $2 limit 2",
        )
        .await
}

pub(super) async fn get(store: &PgStore, id: Uuid) -> StoreResult<Task> {
    let row = store.batched_reads().call(id).await??;
    row.ok_or(StoreError::NotFound)?.into_task()
}

pub(super) async fn get_many(store: &PgStore, ids: &[Uuid]) -> StoreResult<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as("select * from all_tasks where id = any($1)")
        .bind(ids)
        .fetch_all(&store.pool)
        .await?;
    tasks(rows)
}

pub(super) async fn list(store: &PgStore, query: &TaskQuery) -> StoreResult<TaskPage> {
    // Two connections: the total and the page cost a round trip each, and neither waits
    // for the other.
    let (total, rows) = tokio::try_join!(count(store, query), page(store, query))?;
    Ok(TaskPage::new(query, total, tasks(rows)?))
}

/// Tasks matching the list's filters: from the counters when it filters on status alone.
async fn count(store: &PgStore, query: &TaskQuery) -> StoreResult<(Option<i64>, bool)> {
    if query.count != CountMode::None && query.counted_by_status() {
        // Tasks per status are counted as they change (see the counters migration).
        let total = sqlx::query_scalar(include_str!("sql/task_total.sql"))
            .bind(query.status.map(TaskStatus::as_str))
            .fetch_one(&store.pool)
            .await?;
        return Ok((Some(total), false));
    }
    count_matches(store, query.count, |matches| {
        matches.push(" from (");
        push_parts(matches, query, false);
        matches.push(") listed where true");
    })
    .await
}

/// The tasks of the list as two parts joined by `union all`: those that are not running (the
/// hot table's, read from its time indexes, which leave running tasks out, merged with the
/// history's) and the running ones (few, sorted). When `ordered`, each part ends with its order
/// and limit ([`Tail::Part`]). See the list_indexes_skip_running migration for why.
fn push_parts(builder: &mut QueryBuilder<Postgres>, query: &TaskQuery, ordered: bool) {
    const PARTS: [(&str, &str); 2] = [("all_tasks", "<> 'running'"), ("tasks", "= 'running'")];
    for (n, (source, status)) in PARTS.into_iter().enumerate() {
        if n > 0 {
            builder.push(" union all ");
        }
        builder.push(format_args!("(select * from {source}"));
        push_where(builder, query);
        builder.push(format_args!(" and status {status}"));
        if ordered {
            Tail::Part.push(builder, query);
        }
        builder.push(")");
    }
}

/// The list's `where` clause: the status and the filters shared with bulk actions.
fn push_where(builder: &mut QueryBuilder<Postgres>, query: &TaskQuery) {
    builder.push(" where true");
    if let Some(status) = query.status {
        builder.push(" and status = ").push_bind(status.as_str());
    }
    push_task_filters(builder, &query.filter);
}

/// One page of the task list in the query's order. Ordered by a time and the id, each part of
/// [`push_parts`] reads about `offset + limit` rows from its indexes (the history's, and the
/// hot table's for tasks that are not running) or sorts them (the running ones), and the page
/// is cut from the two: a page, and a page past a cursor, costs the same whatever the history
/// holds.
async fn page(store: &PgStore, query: &TaskQuery) -> StoreResult<Vec<TaskRow>> {
    let mut list = QueryBuilder::new("select * from (");
    push_parts(&mut list, query, true);
    list.push(") listed");
    Tail::Page.push(&mut list, query);
    // The original list's statements stay prepared; the rest depend on their values.
    Ok(list
        .build_query_as()
        .persistent(!query.is_extended())
        .fetch_all(&store.pool)
        .await?)
}

/// How a statement of the page ends.
enum Tail {
    /// A part: past the cursor, in order, the first `offset + limit` rows.
    Part,
    /// The page: in order, `limit` rows after `offset`.
    Page,
}

impl Tail {
    fn push(&self, builder: &mut QueryBuilder<Postgres>, query: &TaskQuery) {
        let (column, direction) = (query.sort.column(), query.sort.direction());
        if let (Tail::Part, Some(cursor)) = (self, &query.cursor) {
            builder
                .push(format_args!(" and ({column}, id) {} (", query.sort.past()))
                .push_bind(cursor.at)
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        builder.push(format_args!(
            " order by {column} {direction}, id {direction} limit "
        ));
        match self {
            Tail::Part => {
                builder.push_bind(query.limit.saturating_add(query.offset));
            }
            Tail::Page => {
                builder
                    .push_bind(query.limit)
                    .push(" offset ")
                    .push_bind(query.offset);
            }
        }
    }
}

pub(super) async fn run(store: &PgStore, id: Uuid, actor: &Actor) -> StoreResult<Task> {
    let mut tx = store.pool.begin().await?;
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
        .bind(actor.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    match queued {
        Some(row) => row.into_task(),
        None => get(store, id).await,
    }
}

pub(super) async fn cancel(store: &PgStore, id: Uuid, actor: &Actor) -> StoreResult<Task> {
    let cancelled: Option<TaskRow> = sqlx::query_as(
        r"update tasks
          set status = 'cancelled', finished_at = now(), lease_token = null,
              lease_expires_at = null, updated_at = now(), actor = $3
          where id = $1 and status = any($2)
          returning *",
    )
    .bind(id)
    .bind(names(&TaskStatus::CANCELLABLE))
    .bind(actor.as_str())
    .fetch_optional(&store.pool)
    .await?;
    match cancelled {
        Some(row) => {
            // This process's workers hear it at once; others by the trigger's NOTIFY, which
            // a listener still subscribing would miss (the lease renewal is the guarantee).
            store.watchers.send(Signal::Cancelled(id));
            row.into_task()
        }
        None => get(store, id).await,
    }
}

pub(super) async fn events(store: &PgStore, id: Uuid) -> StoreResult<Vec<TaskEvent>> {
    let rows: Vec<EventRow> =
        sqlx::query_as("select * from all_task_events where task_id = $1 order by seq")
            .bind(id)
            .fetch_all(&store.pool)
            .await?;
    rows.into_iter().map(EventRow::into_event).collect()
}
