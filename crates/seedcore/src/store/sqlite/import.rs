//! Import of existing records into the SQLite store: ids and times kept, ids already stored
//! left alone, each call one transaction.

use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{
    SqliteStore,
    rows::{json_text, parse_id, stamp},
};
use crate::{
    legacy::LegacyTask,
    model::{Fact, TaskStatus, actor::IMPORTED_BY},
    store::{RecordKind, Signal, StoreResult},
};

/// Rows per insert statement (SQLite limits bind parameters per statement).
const CHUNK: usize = 500;

pub(super) async fn facts(store: &SqliteStore, facts: &[Fact]) -> StoreResult<u64> {
    let mut rows = Vec::with_capacity(facts.len());
    for fact in facts {
        let tags = json_text(&fact.tags)?;
        let meta = json_text(&fact.meta_data)?;
        rows.push((fact, tags, meta));
    }
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK) {
        let mut insert = QueryBuilder::new(
            "insert into facts (id, text, tags, meta_data, created_at, updated_at) ",
        );
        insert.push_values(chunk, |mut row, (fact, tags, meta)| {
            row.push_bind(fact.id.to_string())
                .push_bind(fact.text.clone())
                .push_bind(tags.clone())
                .push_bind(meta.clone())
                .push_bind(stamp(fact.created_at))
                .push_bind(stamp(fact.updated_at));
        });
        insert.push(" on conflict (id) do nothing");
        inserted += insert.build().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(inserted)
}

/// A task's columns as SQLite stores them.
struct TaskColumns<'t> {
    task: &'t LegacyTask,
    params: String,
    result: Option<String>,
    attached: String,
}

pub(super) async fn tasks(store: &SqliteStore, tasks: &[LegacyTask]) -> StoreResult<u64> {
    let mut rows = Vec::with_capacity(tasks.len());
    for task in tasks {
        rows.push(TaskColumns {
            task,
            params: json_text(&task.params)?,
            result: task.result.as_ref().map(json_text).transpose()?,
            attached: json_text(&task.attached_fact_ids)?,
        });
    }
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK) {
        let mut insert = QueryBuilder::new(
            "insert into tasks (id, type, description, params, status, result, error, \
             attached_fact_ids, created_at, updated_at, run_at, finished_at, actor) ",
        );
        insert.push_values(chunk, |mut row, columns| {
            let task = columns.task;
            row.push_bind(task.id.to_string())
                .push_bind(task.task_type.clone())
                .push_bind(task.description.clone())
                .push_bind(columns.params.clone())
                .push_bind(task.status.as_str())
                .push_bind(columns.result.clone())
                .push_bind(task.error.clone())
                .push_bind(columns.attached.clone())
                .push_bind(stamp(task.created_at))
                .push_bind(stamp(task.updated_at))
                .push_bind(stamp(task.updated_at))
                .push_bind(task.status.is_final().then(|| stamp(task.updated_at)))
                .push_bind(IMPORTED_BY);
        });
        insert.push(" on conflict (id) do nothing");
        inserted += insert.build().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    if tasks.iter().any(|t| t.status == TaskStatus::Queued) {
        store.watchers.send(Signal::TasksReady);
    }
    Ok(inserted)
}

pub(super) async fn stored_ids(
    store: &SqliteStore,
    kind: RecordKind,
    ids: &[Uuid],
) -> StoreResult<Vec<Uuid>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let mut query = QueryBuilder::new(match kind {
            RecordKind::Task => "select id from tasks where id in (",
            RecordKind::Fact => "select id from facts where id in (",
        });
        let mut list = query.separated(", ");
        for id in chunk {
            list.push_bind(id.to_string());
        }
        query.push(")");
        let rows: Vec<String> = query.build_query_scalar().fetch_all(&store.reader).await?;
        for row in rows {
            found.push(parse_id(&row)?);
        }
    }
    Ok(found)
}
