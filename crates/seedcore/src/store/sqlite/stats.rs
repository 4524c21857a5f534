//! Task statistics on SQLite: one statement that counts and ranks the finished tasks of the
//! window per bucket (`sql/task_stats.sql`) and answers at most one row per bucket, so what
//! reaches this process is bounded whatever the history holds; the empty buckets are filled
//! in by the shared plan.

use chrono::Utc;

use super::{SqliteStore, rows::stamp};
use crate::store::{
    StoreResult,
    stats::{CountedBucket, CountedRow, StatsQuery, StatsWindow, TaskStats, assemble},
};

pub(super) async fn task_stats(store: &SqliteStore, query: &StatsQuery) -> StoreResult<TaskStats> {
    let window = StatsWindow::of(query.minutes, Utc::now());
    let rows: Vec<CountedRow> = sqlx::query_as(include_str!("sql/task_stats.sql"))
        .bind(stamp(window.since))
        .bind(stamp(window.end()))
        .bind(window.bucket_seconds)
        .bind(query.queue.as_deref())
        .bind(query.task_type.as_deref())
        .fetch_all(&store.reader)
        .await?;
    Ok(assemble(
        &window,
        rows.into_iter().map(CountedBucket::from).collect(),
    ))
}
