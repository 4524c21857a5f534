//! Bulk actions on PostgreSQL, and the single delete they share their rule with. Each batch
//! is one transaction: the action's row locked and checked against its owner, the next ids
//! read by key, the change applied with the statements (and triggers) a single run, cancel or
//! delete uses, and the cursor and counts written back. Tasks another transaction holds are
//! waited for (in id order, never for long: each such statement is short), not skipped.

use std::time::Duration;

use sqlx::{Postgres, QueryBuilder, types::Json};
use uuid::Uuid;

use super::rows::Pg;
use super::{PgStore, task_filters::push_task_filters};
use crate::model::TaskStatus;
use crate::model::transition::{PARENT_DONE, PARENT_DONE_ON_FAILURE, names};
use crate::store::{
    ActionKind, NewAction, Signal, StoreError, StoreResult, TaskAction, actions::ActionRow,
    rows::parse_status,
};

type Row = ActionRow<Pg>;

pub(super) async fn create(
    store: &PgStore,
    action: NewAction,
    owner: &str,
    lease: Duration,
) -> StoreResult<TaskAction> {
    let row: Row = sqlx::query_as(
        r"insert into task_actions (id, action, filter, bound, actor, owner, lease_expires_at)
          values ($1, $2, $3, now(), $4, $5, now() + $6 * interval '1 second')
          returning *",
    )
    .bind(action.id)
    .bind(action.action.as_str())
    .bind(Json(&action.filter))
    .bind(&action.actor)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_one(&store.pool)
    .await?;
    row.into_action()
}

pub(super) async fn get(store: &PgStore, id: Uuid) -> StoreResult<TaskAction> {
    let row: Option<Row> = sqlx::query_as("select * from task_actions where id = $1")
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    row.ok_or(StoreError::NotFound)?.into_action()
}

pub(super) async fn list(store: &PgStore, limit: i64) -> StoreResult<Vec<TaskAction>> {
    let rows: Vec<Row> =
        sqlx::query_as("select * from task_actions order by created_at desc, id desc limit $1")
            .bind(limit)
            .fetch_all(&store.pool)
            .await?;
    rows.into_iter().map(Row::into_action).collect()
}

pub(super) async fn adopt(
    store: &PgStore,
    owner: &str,
    lease: Duration,
) -> StoreResult<Option<TaskAction>> {
    let row: Option<Row> = sqlx::query_as(
        r"update task_actions
          set owner = $1, lease_expires_at = now() + $2 * interval '1 second'
          where id = (
              select id from task_actions
              where state = 'running' and (lease_expires_at is null or lease_expires_at < now())
              order by created_at
              limit 1
              for update skip locked)
          returning *",
    )
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_optional(&store.pool)
    .await?;
    row.map(Row::into_action).transpose()
}

pub(super) async fn fail(store: &PgStore, id: Uuid, owner: &str, error: &str) -> StoreResult<()> {
    sqlx::query(
        r"update task_actions
          set state = 'failed', error = $3, finished_at = now(), lease_expires_at = null
          where id = $1 and owner = $2 and state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(error)
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// What a batch changed that this process must be told of once it committed.
#[derive(Default)]
struct Changed {
    done: i64,
    cancelled_running: Vec<Uuid>,
    queued: bool,
}

pub(super) async fn batch(
    store: &PgStore,
    id: Uuid,
    owner: &str,
    lease: Duration,
    batch: i64,
) -> StoreResult<Option<TaskAction>> {
    let mut tx = store.pool.begin().await?;
    let held: Option<Row> = sqlx::query_as(
        "select * from task_actions where id = $1 and owner = $2 and state = 'running' for update",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(action) = held.map(Row::into_action).transpose()? else {
        return Ok(None);
    };
    let ids: Vec<Uuid> = candidates(&action, batch)
        .build_query_scalar()
        .fetch_all(&mut *tx)
        .await?;
    let changed = match action.action {
        ActionKind::Cancel => cancel(&mut tx, &ids, action.actor()).await?,
        ActionKind::Run => run(&mut tx, &ids, action.actor()).await?,
        ActionKind::Delete => Changed {
            done: delete(&mut tx, &ids).await?.len() as i64,
            ..Changed::default()
        },
    };
    let row: Row = sqlx::query_as(include_str!("sql/action_progress.sql"))
        .bind(id)
        .bind(ids.len() as i64)
        .bind(changed.done)
        .bind(ids.last())
        .bind((ids.len() as i64) < batch)
        .bind(owner)
        .bind(lease.as_secs_f64())
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    for task in changed.cancelled_running {
        store.watchers.send(Signal::Cancelled(task));
    }
    if changed.queued {
        store.announce();
    }
    row.into_action().map(Some)
}

/// The next ids the action applies to, in id order after its cursor.
fn candidates(action: &TaskAction, batch: i64) -> QueryBuilder<Postgres> {
    // Only unfinished tasks can be cancelled, and those are never in the history.
    let mut query = QueryBuilder::new(if action.action.reaches_finished() {
        "select id from all_tasks where created_at <= "
    } else {
        "select id from tasks where created_at <= "
    });
    let filter = &action.filter;
    query
        .push_bind(action.bound)
        .push(" and status = any(")
        .push_bind(filter.statuses(action.action))
        .push(")");
    if let Some(cursor) = action.cursor {
        query.push(" and id > ").push_bind(cursor);
    }
    push_task_filters(&mut query, &filter.task_filter());
    query.push(" order by id limit ").push_bind(batch);
    query
}

async fn cancel(tx: &mut sqlx::PgConnection, ids: &[Uuid], actor: &str) -> StoreResult<Changed> {
    // Locked first, in id order, with the status they had: a running task's worker is told.
    let hit: Vec<(Uuid, String)> = sqlx::query_as(
        "select id, status from tasks where id = any($1) and status = any($2) \
         order by id for update",
    )
    .bind(ids)
    .bind(names(&TaskStatus::CANCELLABLE))
    .fetch_all(&mut *tx)
    .await?;
    let locked: Vec<Uuid> = hit.iter().map(|(id, _)| *id).collect();
    // As a single cancel; the trigger tells other processes of the running ones.
    let done = sqlx::query(
        r"update tasks
          set status = 'cancelled', finished_at = now(), lease_token = null,
              lease_expires_at = null, updated_at = now(), actor = $2
          where id = any($1)",
    )
    .bind(&locked)
    .bind(actor)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let mut changed = Changed {
        done: done as i64,
        ..Changed::default()
    };
    for (id, was) in hit {
        if parse_status(&was)? == TaskStatus::Running {
            changed.cancelled_running.push(id);
        }
    }
    Ok(changed)
}

async fn run(tx: &mut sqlx::PgConnection, ids: &[Uuid], actor: &str) -> StoreResult<Changed> {
    // As a single run does: finished tasks back into the hot table, then the parents locked
    // (see `tasks::run`).
    sqlx::query("select seedcore_unarchive(h.id) from task_history h where h.id = any($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "select 1 from tasks c join tasks p on p.id = any(c.depends_on) where c.id = any($1) \
         order by p.id for share of p",
    )
    .bind(ids)
    .execute(&mut *tx)
    .await?;
    let statuses: Vec<String> = sqlx::query_scalar(include_str!("sql/action_run.sql"))
        .bind(ids)
        .bind(names(&TaskStatus::RUNNABLE))
        .bind(names(&PARENT_DONE))
        .bind(names(&PARENT_DONE_ON_FAILURE))
        .bind(actor)
        .fetch_all(&mut *tx)
        .await?;
    Ok(Changed {
        done: statuses.len() as i64,
        queued: statuses.iter().any(|s| s == TaskStatus::Queued.as_str()),
        ..Changed::default()
    })
}

/// Finished tasks among the ids, locked, with their idempotency keys. A task a blocked task
/// still waits on is kept (its outcome decides the child's), as pruning keeps it.
const DELETABLE: &str = r"select t.id, t.idempotency_key from tasks t
    where t.id = any($1) and t.status in ('completed', 'failed', 'cancelled')
      and not exists (
          select 1 from tasks c where c.status = 'blocked' and c.depends_on @> array[t.id])
    order by t.id
    for update";
/// The same in the history, where every task is finished.
const DELETABLE_HISTORY: &str = r"select h.id, h.idempotency_key from task_history h
    where h.id = any($1)
      and not exists (
          select 1 from tasks c where c.status = 'blocked' and c.depends_on @> array[h.id])
    order by h.id
    for update";

/// Deletes the finished tasks among `ids`, wherever they are (hot table or history), with
/// their events and idempotency keys; returns the ids deleted. Each statement names its rows
/// by `= any($1)`, which keeps to the primary keys (a join or `in (select …)` over a batch
/// was planned as a scan of the whole table).
async fn delete(tx: &mut sqlx::PgConnection, ids: &[Uuid]) -> StoreResult<Vec<Uuid>> {
    let mut doomed: Vec<(Uuid, Option<String>)> = sqlx::query_as(DELETABLE)
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    doomed.extend(
        sqlx::query_as::<_, (Uuid, Option<String>)>(DELETABLE_HISTORY)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?,
    );
    let gone: Vec<Uuid> = doomed.iter().map(|(id, _)| *id).collect();
    let keys: Vec<String> = doomed.into_iter().filter_map(|(_, key)| key).collect();
    for sql in [
        "delete from task_events where task_id = any($1)",
        "delete from task_event_history where task_id = any($1)",
        "delete from tasks where id = any($1)",
        "delete from task_history where id = any($1)",
    ] {
        sqlx::query(sql).bind(&gone).execute(&mut *tx).await?;
    }
    sqlx::query("delete from task_keys where key = any($1)")
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
    Ok(gone)
}

pub(super) async fn delete_task(store: &PgStore, id: Uuid) -> StoreResult<()> {
    let mut tx = store.pool.begin().await?;
    let deleted = delete(&mut tx, &[id]).await?;
    tx.commit().await?;
    if !deleted.is_empty() {
        return Ok(());
    }
    let task = super::tasks::get(store, id).await?;
    Err(crate::store::actions::not_deletable(task.status))
}
