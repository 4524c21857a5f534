//! Task statistics on SQLite: one statement that counts and ranks the finished tasks of the
//! window per bucket (`sql/task_stats.sql`) and answers at most one row per bucket, so what
//! reaches this process is bounded whatever the history holds; the empty buckets are filled
//! in by the shared plan.

use chrono::Utc;

use super::{SqliteStore, rows::stamp};
use crate::store::{
    StoreResult,
    stats::{CountedBucket, Percentiles, StatsQuery, StatsWindow, TaskStats, assemble},
};

type Row = (
    i64,
    i64,
    i64,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

pub(super) async fn task_stats(store: &SqliteStore, query: &StatsQuery) -> StoreResult<TaskStats> {
    let window = StatsWindow::of(query.minutes, Utc::now());
    let rows: Vec<Row> = sqlx::query_as(include_str!("sql/task_stats.sql"))
        .bind(stamp(window.since))
        .bind(stamp(window.end()))
        .bind(window.bucket_seconds)
        .bind(query.queue.as_deref())
        .bind(query.task_type.as_deref())
        .fetch_all(&store.reader)
        .await?;
    Ok(assemble(&window, rows.into_iter().map(counted).collect()))
}

fn counted(row: Row) -> CountedBucket {
    let (n, completed, failed, cancelled, run_p50, run_p95, wait_p50, wait_p95) = row;
    CountedBucket {
        n,
        completed,
        failed,
        cancelled,
        run_ms: Percentiles::of(run_p50, run_p95),
        wait_ms: Percentiles::of(wait_p50, wait_p95),
    }
}
