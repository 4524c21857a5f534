//! Bulk actions on SQLite, and the single delete they share their rule with. Each batch is one
//! write transaction of the single writer connection: the action's row checked against its
//! owner, the next ids read by key, the change applied as a single run, cancel or delete
//! applies it, and the cursor and counts written back.

use std::time::Duration;

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::rows::{Lite, after, json_text, stamp};
use super::{
    SqliteStore,
    task_filters::{Indexes, push_task_filters},
};
use crate::model::TaskStatus;
use crate::model::transition::{PARENT_DONE, PARENT_DONE_ON_FAILURE, names};
use crate::store::{
    ActionKind, NewAction, Signal, StoreError, StoreResult, TaskAction, actions::ActionRow,
    rows::parse_status,
};

type Row = ActionRow<Lite>;

pub(super) async fn create(
    store: &SqliteStore,
    action: NewAction,
    owner: &str,
    lease: Duration,
) -> StoreResult<TaskAction> {
    let now = Utc::now();
    let row: Row = sqlx::query_as(
        r"insert into task_actions
              (id, action, filter, bound, actor, owner, lease_expires_at, created_at)
          values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?4)
          returning *",
    )
    .bind(action.id.to_string())
    .bind(action.action.as_str())
    .bind(json_text(&action.filter)?)
    .bind(stamp(now))
    .bind(&action.actor)
    .bind(owner)
    .bind(stamp(after(now, lease)))
    .fetch_one(&store.writer)
    .await?;
    row.into_action()
}

pub(super) async fn get(store: &SqliteStore, id: Uuid) -> StoreResult<TaskAction> {
    let row: Option<Row> = sqlx::query_as("select * from task_actions where id = ?1")
        .bind(id.to_string())
        .fetch_optional(&store.reader)
        .await?;
    row.ok_or(StoreError::NotFound)?.into_action()
}

pub(super) async fn list(store: &SqliteStore, limit: i64) -> StoreResult<Vec<TaskAction>> {
    let rows: Vec<Row> =
        sqlx::query_as("select * from task_actions order by created_at desc, id desc limit ?1")
            .bind(limit)
            .fetch_all(&store.reader)
            .await?;
    rows.into_iter().map(Row::into_action).collect()
}

pub(super) async fn adopt(
    store: &SqliteStore,
    owner: &str,
    lease: Duration,
) -> StoreResult<Option<TaskAction>> {
    let now = Utc::now();
    let row: Option<Row> = sqlx::query_as(
        r"update task_actions
          set owner = ?1, lease_expires_at = ?2
          where id = (
              select id from task_actions
              where state = 'running' and (lease_expires_at is null or lease_expires_at < ?3)
              order by created_at
              limit 1)
          returning *",
    )
    .bind(owner)
    .bind(stamp(after(now, lease)))
    .bind(stamp(now))
    .fetch_optional(&store.writer)
    .await?;
    row.map(Row::into_action).transpose()
}

pub(super) async fn fail(
    store: &SqliteStore,
    id: Uuid,
    owner: &str,
    error: &str,
) -> StoreResult<()> {
    sqlx::query(
        r"update task_actions
          set state = 'failed', error = ?3, finished_at = ?4, lease_expires_at = null
          where id = ?1 and owner = ?2 and state = 'running'",
    )
    .bind(id.to_string())
    .bind(owner)
    .bind(error)
    .bind(stamp(Utc::now()))
    .execute(&store.writer)
    .await?;
    Ok(())
}

/// What a batch changed that the watchers must be told of once it committed.
#[derive(Default)]
struct Changed {
    done: i64,
    cancelled_running: Vec<Uuid>,
    queued: bool,
}

pub(super) async fn batch(
    store: &SqliteStore,
    id: Uuid,
    owner: &str,
    lease: Duration,
    batch: i64,
) -> StoreResult<Option<TaskAction>> {
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let held: Option<Row> = sqlx::query_as(
        "select * from task_actions where id = ?1 and owner = ?2 and state = 'running'",
    )
    .bind(id.to_string())
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(action) = held.map(Row::into_action).transpose()? else {
        return Ok(None);
    };
    let ids: Vec<String> = candidates(&action, batch)?
        .build_query_scalar()
        .fetch_all(&mut *tx)
        .await?;
    let listed = json_text(&ids)?;
    let changed = match action.action {
        ActionKind::Cancel => cancel(&mut tx, &listed, action.actor()).await?,
        ActionKind::Run => run(&mut tx, &listed, action.actor()).await?,
        ActionKind::Delete => Changed {
            done: delete(&mut tx, &listed).await?,
            ..Changed::default()
        },
    };
    let now = Utc::now();
    let row: Row = sqlx::query_as(include_str!("sql/action_progress.sql"))
        .bind(id.to_string())
        .bind(ids.len() as i64)
        .bind(changed.done)
        .bind(ids.last())
        .bind((ids.len() as i64) < batch)
        .bind(stamp(now))
        .bind(stamp(after(now, lease)))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    for task in changed.cancelled_running {
        store.watchers.send(Signal::Cancelled(task));
    }
    if changed.queued {
        store.watchers.send(Signal::TasksReady);
    }
    if action.action == ActionKind::Cancel && changed.done > 0 {
        store.settled();
    }
    row.into_action().map(Some)
}

/// The next ids the action applies to, in id order after its cursor. The filters' columns
/// are written `+column` so that SQLite walks the primary key from the cursor (linear over
/// the whole action) rather than a status or time index it would then sort (every batch
/// reading all the matching tasks left).
fn candidates(action: &TaskAction, batch: i64) -> StoreResult<QueryBuilder<Sqlite>> {
    let filter = &action.filter;
    let mut query = QueryBuilder::new("select id from tasks where +created_at <= ");
    query
        .push_bind(stamp(action.bound))
        .push(" and +status in (select value from json_each(")
        .push_bind(json_text(&filter.statuses(action.action))?)
        .push("))");
    if let Some(cursor) = action.cursor {
        query.push(" and id > ").push_bind(cursor.to_string());
    }
    push_task_filters(&mut query, &filter.task_filter(), Indexes::Unused);
    query.push(" order by id limit ").push_bind(batch);
    Ok(query)
}

async fn cancel(tx: &mut SqliteConnection, ids: &str, actor: &str) -> StoreResult<Changed> {
    // The statuses first, in the same write transaction: a running task's worker is told.
    let cancellable = json_text(&names(&TaskStatus::CANCELLABLE))?;
    let hit: Vec<(String, String)> = sqlx::query_as(
        "select id, status from tasks where id in (select value from json_each(?1)) \
         and status in (select value from json_each(?2))",
    )
    .bind(ids)
    .bind(&cancellable)
    .fetch_all(&mut *tx)
    .await?;
    let done = sqlx::query(
        r"update tasks
          set status = 'cancelled', finished_at = ?3, lease_token = null,
              lease_expires_at = null, updated_at = ?3, actor = ?4
          where id in (select value from json_each(?1))
            and status in (select value from json_each(?2))",
    )
    .bind(ids)
    .bind(&cancellable)
    .bind(stamp(Utc::now()))
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
            changed.cancelled_running.push(super::rows::parse_id(&id)?);
        }
    }
    Ok(changed)
}

async fn run(tx: &mut SqliteConnection, ids: &str, actor: &str) -> StoreResult<Changed> {
    let statuses: Vec<String> = sqlx::query_scalar(include_str!("sql/action_run.sql"))
        .bind(ids)
        .bind(stamp(Utc::now()))
        .bind(json_text(&names(&TaskStatus::RUNNABLE))?)
        .bind(json_text(&names(&PARENT_DONE))?)
        .bind(json_text(&names(&PARENT_DONE_ON_FAILURE))?)
        .bind(actor)
        .fetch_all(&mut *tx)
        .await?;
    Ok(Changed {
        done: statuses.len() as i64,
        queued: statuses.iter().any(|s| s == TaskStatus::Queued.as_str()),
        ..Changed::default()
    })
}

/// Deletes the finished tasks among `ids` with their events and edges; returns how many.
async fn delete(tx: &mut SqliteConnection, ids: &str) -> StoreResult<i64> {
    let gone: Vec<String> = sqlx::query_scalar(include_str!("sql/delete_finished.sql"))
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    let gone_list = json_text(&gone)?;
    for sql in [
        "delete from task_events where task_id in (select value from json_each(?1))",
        "delete from task_dependencies where task_id in (select value from json_each(?1))",
    ] {
        sqlx::query(sql).bind(&gone_list).execute(&mut *tx).await?;
    }
    Ok(gone.len() as i64)
}

pub(super) async fn delete_task(store: &SqliteStore, id: Uuid) -> StoreResult<()> {
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let deleted = delete(&mut tx, &json_text(&[id.to_string()])?).await?;
    tx.commit().await?;
    if deleted > 0 {
        return Ok(());
    }
    let task = super::tasks::get(store, id).await?;
    Err(crate::store::actions::not_deletable(task.status))
}
