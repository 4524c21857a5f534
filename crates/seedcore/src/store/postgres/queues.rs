//! Queues on PostgreSQL: the list with tasks counted per queue and status, and the pause
//! switch (resuming a queue wakes the workers that may be waiting on it).

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::model::QueueInfo;
use crate::store::{StoreResult, queues::queue_infos};

pub(super) async fn list(store: &PgStore) -> StoreResult<Vec<QueueInfo>> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(include_str!("sql/queue_counts.sql"))
        .bind(None::<&str>)
        .fetch_all(&store.pool)
        .await?;
    let paused: Vec<(String, bool)> = sqlx::query_as("select name, paused from queues")
        .fetch_all(&store.pool)
        .await?;
    Ok(queue_infos(counts, paused))
}

/// Per queue, the due time of its oldest due ready task: one pass over the partial index of
/// ready tasks (the hot table's ready set; finished tasks and the history are never read).
pub(super) async fn oldest_ready(store: &PgStore) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
    let oldest = sqlx::query_as(
        r"select queue, min(run_at) from tasks
          where status in ('queued', 'retry') and run_at <= now()
          group by queue",
    )
    .fetch_all(&store.pool)
    .await?;
    Ok(oldest)
}

pub(super) async fn set_paused(
    store: &PgStore,
    name: &str,
    paused: bool,
) -> StoreResult<QueueInfo> {
    sqlx::query(
        r"insert into queues (name, paused) values ($1, $2)
          on conflict (name) do update set paused = excluded.paused, updated_at = now()",
    )
    .bind(name)
    .bind(paused)
    .execute(&store.pool)
    .await?;
    if !paused {
        // Idle workers may be waiting on this queue's tasks: wake them.
        store.announce();
    }
    let counts: Vec<(String, String, i64)> = sqlx::query_as(include_str!("sql/queue_counts.sql"))
        .bind(name)
        .fetch_all(&store.pool)
        .await?;
    let info = queue_infos(counts, vec![(name.to_string(), paused)]);
    Ok(info.into_iter().next().expect("the queue just written"))
}
