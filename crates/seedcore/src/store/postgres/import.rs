//! Import of existing records into the PostgreSQL store: ids and times kept, ids already
//! stored left alone, each call one transaction.

use std::collections::HashSet;

use sqlx::{QueryBuilder, types::Json};
use uuid::Uuid;

use super::{IMPORT_CHUNK, PgStore};
use crate::legacy::LegacyTask;
use crate::model::{Fact, TaskStatus, actor::IMPORTED_BY};
use crate::store::{RecordKind, StoreResult};

pub(super) async fn facts(store: &PgStore, facts: &[Fact]) -> StoreResult<u64> {
    let mut tx = store.pool.begin().await?;
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

pub(super) async fn tasks(store: &PgStore, tasks: &[LegacyTask]) -> StoreResult<u64> {
    let mut tx = store.pool.begin().await?;
    // The conflict clause below sees the hot table only; moved tasks are skipped here.
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    let archived: HashSet<Uuid> =
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
             attached_fact_ids, created_at, updated_at, run_at, finished_at, actor) ",
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
                .push_bind(task.status.is_final().then_some(task.updated_at))
                .push_bind(IMPORTED_BY);
        });
        insert.push(" on conflict (id) do nothing");
        inserted += insert.build().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    if tasks.iter().any(|t| t.status == TaskStatus::Queued) {
        store.announce();
    }
    Ok(inserted)
}

pub(super) async fn stored_ids(
    store: &PgStore,
    kind: RecordKind,
    ids: &[Uuid],
) -> StoreResult<Vec<Uuid>> {
    let sql = match kind {
        RecordKind::Task => "select id from all_tasks where id = any($1)",
        RecordKind::Fact => "select id from facts where id = any($1)",
    };
    Ok(sqlx::query_scalar(sql)
        .bind(ids)
        .fetch_all(&store.pool)
        .await?)
}
