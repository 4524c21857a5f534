//! Task statistics on PostgreSQL: one statement over the hot table and the history, bucketed
//! and zero-filled by the database (`sql/task_stats.sql`).

use chrono::Utc;

use super::PgStore;
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

pub(super) async fn task_stats(store: &PgStore, query: &StatsQuery) -> StoreResult<TaskStats> {
    let window = StatsWindow::of(query.minutes, Utc::now());
    let rows: Vec<Row> = sqlx::query_as(include_str!("sql/task_stats.sql"))
        .bind(window.since)
        .bind(window.bucket_seconds as f64)
        .bind(window.buckets)
        .bind(query.queue.as_deref())
        .bind(query.task_type.as_deref())
        .fetch_all(&store.pool)
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
