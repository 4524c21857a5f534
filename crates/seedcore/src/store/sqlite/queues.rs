//! Queues on SQLite: the list with tasks counted per queue and status, the pause switch and
//! the concurrency limit (resuming a queue or changing its limit wakes this process's
//! workers). The claim statement enforces the limit; this module only stores it.

use chrono::{DateTime, Utc};

use super::{
    SqliteStore,
    rows::{parse_time, stamp},
};
use crate::model::QueueInfo;
use crate::store::{
    Signal, StoreResult,
    queues::{QueueSettings, queue_infos},
};

const SETTINGS: &str = "select name, paused, concurrency from queues";
const SETTINGS_OF: &str = "select name, paused, concurrency from queues where name = ?1";

pub(super) async fn list(store: &SqliteStore) -> StoreResult<Vec<QueueInfo>> {
    let counts: Vec<(String, String, i64)> =
        sqlx::query_as("select queue, status, count(*) from tasks group by queue, status")
            .fetch_all(&store.reader)
            .await?;
    let settings: Vec<QueueSettings> = sqlx::query_as(SETTINGS).fetch_all(&store.reader).await?;
    Ok(queue_infos(counts, settings))
}

/// Per queue, the due time of its oldest due ready task: one descent of
/// `tasks_queue_ready_idx` per queue (finished tasks are never read).
pub(super) async fn oldest_ready(
    store: &SqliteStore,
    names: &[String],
) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
    let now = stamp(Utc::now());
    let mut oldest = Vec::new();
    for name in names {
        let at: Option<String> = sqlx::query_scalar(
            r"select min(run_at) from tasks indexed by tasks_queue_ready_idx
              where queue = ?1 and status in ('queued', 'retry') and run_at <= ?2",
        )
        .bind(name)
        .bind(&now)
        .fetch_one(&store.reader)
        .await?;
        if let Some(at) = at {
            oldest.push((name.clone(), parse_time(&at)?));
        }
    }
    Ok(oldest)
}

pub(super) async fn set_paused(
    store: &SqliteStore,
    name: &str,
    paused: bool,
) -> StoreResult<QueueInfo> {
    sqlx::query(
        r"insert into queues (name, paused, updated_at) values (?1, ?2, ?3)
          on conflict (name) do update set paused = excluded.paused, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(paused)
    .bind(stamp(Utc::now()))
    .execute(&store.writer)
    .await?;
    if !paused {
        store.watchers.send(Signal::TasksReady);
    }
    info(store, name).await
}

pub(super) async fn set_concurrency(
    store: &SqliteStore,
    name: &str,
    concurrency: Option<i32>,
) -> StoreResult<QueueInfo> {
    sqlx::query(
        r"insert into queues (name, concurrency, updated_at) values (?1, ?2, ?3)
          on conflict (name) do update
          set concurrency = excluded.concurrency, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(concurrency)
    .bind(stamp(Utc::now()))
    .execute(&store.writer)
    .await?;
    // A raised or cleared limit leaves room that idle workers are not told of otherwise.
    store.watchers.send(Signal::TasksReady);
    info(store, name).await
}

/// The queue `name` as the list shows it, read on the writer so it sees the write just made.
async fn info(store: &SqliteStore, name: &str) -> StoreResult<QueueInfo> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "select queue, status, count(*) from tasks where queue = ?1 group by queue, status",
    )
    .bind(name)
    .fetch_all(&store.writer)
    .await?;
    let settings: Vec<QueueSettings> = sqlx::query_as(SETTINGS_OF)
        .bind(name)
        .fetch_all(&store.writer)
        .await?;
    let info = queue_infos(counts, settings);
    Ok(info.into_iter().next().expect("the queue just written"))
}
