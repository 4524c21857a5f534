//! Queues on SQLite: the list with tasks counted per queue and status, and the pause switch
//! (resuming a queue wakes this process's workers).

use chrono::{DateTime, Utc};

use super::{
    SqliteStore,
    rows::{parse_time, stamp},
};
use crate::model::QueueInfo;
use crate::store::{Signal, StoreResult, queues::queue_infos};

pub(super) async fn list(store: &SqliteStore) -> StoreResult<Vec<QueueInfo>> {
    let counts: Vec<(String, String, i64)> =
        sqlx::query_as("select queue, status, count(*) from tasks group by queue, status")
            .fetch_all(&store.reader)
            .await?;
    let paused: Vec<(String, bool)> = sqlx::query_as("select name, paused from queues")
        .fetch_all(&store.reader)
        .await?;
    Ok(queue_infos(counts, paused))
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
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "select queue, status, count(*) from tasks where queue = ?1 group by queue, status",
    )
    .bind(name)
    .fetch_all(&store.writer)
    .await?;
    let info = queue_infos(counts, vec![(name.to_string(), paused)]);
    Ok(info.into_iter().next().expect("the queue just written"))
}
