//! The audit trail read as a stream on PostgreSQL: events after a `seq`, from both the live
//! table and the history, joined with their tasks.

use super::PgStore;
use super::rows::Pg;
use crate::store::{
    StoreResult, TaskChange,
    events::{ChangeRow, changes},
};

pub(super) async fn after(store: &PgStore, after: i64, limit: i64) -> StoreResult<Vec<TaskChange>> {
    let rows: Vec<ChangeRow<Pg>> = sqlx::query_as(include_str!("sql/events_after.sql"))
        .bind(after)
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    changes(rows)
}

pub(super) async fn last_seq(store: &PgStore) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        r"select coalesce(greatest((select max(seq) from task_events),
                                   (select max(seq) from task_event_history)), 0)",
    )
    .fetch_one(&store.pool)
    .await?)
}
