//! The audit trail read as a stream on SQLite: events after a `seq`, joined with their tasks.
//! One connection writes, so events commit in `seq` order and a reader never sees a gap fill
//! in later.

use super::SqliteStore;
use super::rows::Lite;
use crate::store::{
    StoreResult, TaskChange,
    events::{ChangeRow, changes},
};

pub(super) async fn after(
    store: &SqliteStore,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<TaskChange>> {
    let rows: Vec<ChangeRow<Lite>> = sqlx::query_as(include_str!("sql/events_after.sql"))
        .bind(after)
        .bind(limit)
        .fetch_all(&store.reader)
        .await?;
    changes(rows)
}

pub(super) async fn last_seq(store: &SqliteStore) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("select coalesce(max(seq), 0) from task_events")
            .fetch_one(&store.reader)
            .await?,
    )
}
