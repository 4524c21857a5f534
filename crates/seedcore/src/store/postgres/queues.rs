//! Queues on PostgreSQL: the list with tasks counted per queue and status, the pause switch
//! and the concurrency limit (resuming a queue or changing its limit wakes the workers that
//! may be waiting on it). The claim function enforces the limit; this module only stores it.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::model::QueueInfo;
use crate::store::{
    StoreResult,
    queues::{QueueSettings, queue_infos},
};

const SETTINGS: &str = "select name, paused, concurrency from queues";
const SETTINGS_OF: &str = "select name, paused, concurrency from queues where name = $1";

pub(super) async fn list(store: &PgStore) -> StoreResult<Vec<QueueInfo>> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(include_str!("sql/queue_counts.sql"))
        .bind(None::<&str>)
        .fetch_all(&store.pool)
        .await?;
    let settings: Vec<QueueSettings> = sqlx::query_as(SETTINGS).fetch_all(&store.pool).await?;
    Ok(queue_infos(counts, settings))
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
    info(store, name).await
}

pub(super) async fn set_concurrency(
    store: &PgStore,
    name: &str,
    concurrency: Option<i32>,
) -> StoreResult<QueueInfo> {
    sqlx::query(
        r"insert into queues (name, concurrency) values ($1, $2)
          on conflict (name) do update
          set concurrency = excluded.concurrency, updated_at = now()",
    )
    .bind(name)
    .bind(concurrency)
    .execute(&store.pool)
    .await?;
    // A raised or cleared limit leaves room that idle workers are not told of otherwise.
    store.announce();
    info(store, name).await
}

/// The queue `name` as the list shows it (its row exists: it was just written).
async fn info(store: &PgStore, name: &str) -> StoreResult<QueueInfo> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(include_str!("sql/queue_counts.sql"))
        .bind(name)
        .fetch_all(&store.pool)
        .await?;
    let settings: Vec<QueueSettings> = sqlx::query_as(SETTINGS_OF)
        .bind(name)
        .fetch_all(&store.pool)
        .await?;
    let info = queue_infos(counts, settings);
    Ok(info.into_iter().next().expect("the queue just written"))
}
