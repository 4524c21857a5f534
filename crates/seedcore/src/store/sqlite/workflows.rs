//! Workflows on SQLite: creating one with all its tasks in one transaction, reading one with
//! its tasks, the list with tasks counted per status, and cancelling the unfinished ones
//! (their running tasks are told to stop once that commits).

use chrono::Utc;
use uuid::Uuid;

use super::{
    SqliteStore, TaskRow,
    rows::{json_text, parse_id, parse_json, parse_time, stamp},
    tasks::insert_all,
};
use crate::{
    model::{Actor, TaskStatus, Workflow, WorkflowPlan, WorkflowSummary, transition::names},
    store::{Page, Signal, StoreError, StoreResult, rows::tasks},
};

pub(super) async fn create(store: &SqliteStore, plan: WorkflowPlan) -> StoreResult<Workflow> {
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
    get(store, plan.id).await
}

pub(super) async fn get(store: &SqliteStore, id: Uuid) -> StoreResult<Workflow> {
    let (name, created_at): (String, String) =
        sqlx::query_as("select name, created_at from workflows where id = ?1")
            .bind(id.to_string())
            .fetch_optional(&store.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
    let rows: Vec<TaskRow> =
        sqlx::query_as("select * from tasks where workflow_id = ?1 order by rowid")
            .bind(id.to_string())
            .fetch_all(&store.reader)
            .await?;
    Ok(Workflow::new(
        id,
        name,
        parse_time(&created_at)?,
        tasks(rows)?,
    ))
}

pub(super) async fn list(
    store: &SqliteStore,
    limit: i64,
    offset: i64,
) -> StoreResult<Page<WorkflowSummary>> {
    let total: i64 = sqlx::query_scalar("select count(*) from workflows")
        .fetch_one(&store.reader)
        .await?;
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as(include_str!("sql/workflows.sql"))
            .bind(limit)
            .bind(offset)
            .fetch_all(&store.reader)
            .await?;
    let items = rows
        .into_iter()
        .map(|(id, name, created_at, counts)| {
            Ok(WorkflowSummary::new(
                parse_id(&id)?,
                name,
                parse_time(&created_at)?,
                parse_json(&counts)?,
            ))
        })
        .collect::<StoreResult<_>>()?;
    Ok(Page { total, items })
}

pub(super) async fn cancel(store: &SqliteStore, id: Uuid, actor: &Actor) -> StoreResult<Workflow> {
    let mut tx = store.writer.begin_with("begin immediate").await?;
    // The running ones are told to stop once this commits.
    let running: Vec<String> =
        sqlx::query_scalar("select id from tasks where workflow_id = ?1 and status = 'running'")
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query(
        r"update tasks
          set status = 'cancelled', finished_at = ?2, lease_token = null,
              lease_expires_at = null, updated_at = ?2, actor = ?4
          where workflow_id = ?1 and status in (select value from json_each(?3))",
    )
    .bind(id.to_string())
    .bind(stamp(Utc::now()))
    .bind(json_text(&names(&TaskStatus::CANCELLABLE))?)
    .bind(actor.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for task in running {
        store.watchers.send(Signal::Cancelled(parse_id(&task)?));
    }
    get(store, id).await
}
