//! Task statistics on PostgreSQL: one statement over the hot table and the history, bucketed
//! and zero-filled by the database (`sql/task_stats.sql`).

use chrono::Utc;

use super::PgStore;
use crate::store::{
    StoreResult,
    stats::{CountedBucket, CountedRow, StatsQuery, StatsWindow, TaskStats, assemble},
};

pub(super) async fn task_stats(store: &PgStore, query: &StatsQuery) -> StoreResult<TaskStats> {
    let window = StatsWindow::of(query.minutes, Utc::now());
    let rows: Vec<CountedRow> = sqlx::query_as(include_str!("sql/task_stats.sql"))
        .bind(window.since)
        .bind(window.bucket_seconds as f64)
        .bind(window.buckets)
        .bind(query.queue.as_deref())
        .bind(query.task_type.as_deref())
        .fetch_all(&store.pool)
        .await?;
    Ok(assemble(
        &window,
        rows.into_iter().map(CountedBucket::from).collect(),
    ))
}
