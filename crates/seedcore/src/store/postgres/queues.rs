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

/// Per queue, the due time of its oldest due ready task: one descent of
/// `tasks_queue_ready_idx` per queue (finished tasks and the history are never read).
pub(super) async fn oldest_ready(
    store: &PgStore,
    names: &[String],
) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
    let oldest: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
        r"select q.name,
                 (select min(t.run_at) from tasks t
                  where t.queue = q.name and t.status in ('queued', 'retry')
                    and t.run_at <= now())
          from unnest($1::text[]) as q(name)",
    )
    .bind(names)
    .fetch_all(&store.pool)
    .await?;
    Ok(oldest
        .into_iter()
        .filter_map(|(queue, at)| Some((queue, at?)))
        .collect())
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
