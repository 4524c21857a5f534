//! Workflows on PostgreSQL: creating one with all its tasks in one transaction, reading one
//! with its tasks, the list with tasks counted per status, and cancelling the unfinished ones.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{IMPORT_CHUNK, PgStore, TaskRow, tasks::insert_tasks};
use crate::model::{Actor, TaskStatus, Workflow, WorkflowPlan, WorkflowSummary, transition::names};
use crate::store::{Page, StoreError, StoreResult, parents::starts, rows::tasks};

/// A row of the workflow list: id, name, creation time, and its tasks counted per status.
type SummaryRow = (Uuid, String, DateTime<Utc>, Json<BTreeMap<String, i64>>);

pub(super) async fn create(store: &PgStore, plan: WorkflowPlan) -> StoreResult<Workflow> {
    let mut tx = store.pool.begin().await?;
    sqlx::query("insert into workflows (id, name) values ($1, $2)")
        .bind(plan.id)
        .bind(&plan.name)
        .execute(&mut *tx)
        .await?;
    let starts = starts(&plan.tasks, &Default::default())?;
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
    store.announce();
    get(store, plan.id).await
}

pub(super) async fn get(store: &PgStore, id: Uuid) -> StoreResult<Workflow> {
    let (name, created_at): (String, DateTime<Utc>) =
        sqlx::query_as("select name, created_at from workflows where id = $1")
            .bind(id)
            .fetch_optional(&store.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
    let rows: Vec<TaskRow> =
        sqlx::query_as("select * from all_tasks where workflow_id = $1 order by seq")
            .bind(id)
            .fetch_all(&store.pool)
            .await?;
    Ok(Workflow::new(id, name, created_at, tasks(rows)?))
}

pub(super) async fn list(
    store: &PgStore,
    limit: i64,
    offset: i64,
) -> StoreResult<Page<WorkflowSummary>> {
    let total: i64 = sqlx::query_scalar("select count(*) from workflows")
        .fetch_one(&store.pool)
        .await?;
    let rows: Vec<SummaryRow> = sqlx::query_as(include_str!("sql/workflows.sql"))
        .bind(limit)
        .bind(offset)
        .fetch_all(&store.pool)
        .await?;
    let items = rows
        .into_iter()
        .map(|(id, name, at, counts)| WorkflowSummary::new(id, name, at, counts.0))
        .collect();
    Ok(Page { total, items })
}

pub(super) async fn cancel(store: &PgStore, id: Uuid, actor: &Actor) -> StoreResult<Workflow> {
    sqlx::query(
        r"update tasks
          set status = 'cancelled', finished_at = now(), lease_token = null,
              lease_expires_at = null, updated_at = now(), actor = $3
          where workflow_id = $1 and status = any($2)",
    )
    .bind(id)
    .bind(names(&TaskStatus::CANCELLABLE))
    .bind(actor.as_str())
    .execute(&store.pool)
    .await?;
    get(store, id).await
}
