//! Worker processes on SQLite: registered on start, seen on every heartbeat, marked on a
//! graceful stop; stopped ones a day old are forgotten when the list is read. Times come from
//! this process's clock.

use chrono::{TimeDelta, Utc};

use super::{SqliteStore, WorkerRow, rows::stamp};
use crate::model::Worker;
use crate::store::StoreResult;

pub(super) async fn register(store: &SqliteStore, worker: &Worker) -> StoreResult<()> {
    sqlx::query(
        r"insert into workers (id, host, pid, version, concurrency, escalated_concurrency,
                               lease_seconds, started_at, last_seen_at)
          values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
          on conflict (id) do update
          set last_seen_at = excluded.last_seen_at, stopped_at = null",
    )
    .bind(&worker.id)
    .bind(&worker.host)
    .bind(worker.pid)
    .bind(&worker.version)
    .bind(worker.concurrency)
    .bind(worker.escalated_concurrency)
    .bind(worker.lease_seconds)
    .bind(stamp(Utc::now()))
    .execute(&store.writer)
    .await?;
    Ok(())
}

pub(super) async fn seen(store: &SqliteStore, id: &str) -> StoreResult<()> {
    sqlx::query("update workers set last_seen_at = ?2 where id = ?1")
        .bind(id)
        .bind(stamp(Utc::now()))
        .execute(&store.writer)
        .await?;
    Ok(())
}

pub(super) async fn stopped(store: &SqliteStore, id: &str) -> StoreResult<()> {
    sqlx::query("update workers set stopped_at = ?2, last_seen_at = ?2 where id = ?1")
        .bind(id)
        .bind(stamp(Utc::now()))
        .execute(&store.writer)
        .await?;
    Ok(())
}

pub(super) async fn list(store: &SqliteStore) -> StoreResult<Vec<Worker>> {
    sqlx::query("delete from workers where last_seen_at < ?1")
        .bind(stamp(Utc::now() - TimeDelta::days(1)))
        .execute(&store.writer)
        .await?;
    let rows: Vec<WorkerRow> = sqlx::query_as("select * from workers order by started_at desc, id")
        .fetch_all(&store.reader)
        .await?;
    rows.into_iter().map(WorkerRow::into_worker).collect()
}
