//! Worker processes on PostgreSQL: registered on start, seen on every heartbeat, marked on a
//! graceful stop; stopped ones a day old are forgotten when the list is read.

use super::{PgStore, WorkerRow};
use crate::model::Worker;
use crate::store::StoreResult;

pub(super) async fn register(store: &PgStore, worker: &Worker) -> StoreResult<()> {
    sqlx::query(
        r"insert into workers (id, host, pid, version, concurrency, escalated_concurrency,
                               lease_seconds, started_at, last_seen_at)
          values ($1, $2, $3, $4, $5, $6, $7, now(), now())
          on conflict (id) do update
          set last_seen_at = now(), stopped_at = null",
    )
    .bind(&worker.id)
    .bind(&worker.host)
    .bind(worker.pid)
    .bind(&worker.version)
    .bind(worker.concurrency)
    .bind(worker.escalated_concurrency)
    .bind(worker.lease_seconds)
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub(super) async fn seen(store: &PgStore, id: &str) -> StoreResult<()> {
    sqlx::query("update workers set last_seen_at = now() where id = $1")
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(())
}

pub(super) async fn stopped(store: &PgStore, id: &str) -> StoreResult<()> {
    sqlx::query("update workers set stopped_at = now(), last_seen_at = now() where id = $1")
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(())
}

pub(super) async fn list(store: &PgStore) -> StoreResult<Vec<Worker>> {
    sqlx::query("delete from workers where last_seen_at < now() - interval '1 day'")
        .execute(&store.pool)
        .await?;
    let rows: Vec<WorkerRow> = sqlx::query_as("select * from workers order by started_at desc, id")
        .fetch_all(&store.pool)
        .await?;
    rows.into_iter().map(WorkerRow::into_worker).collect()
}
