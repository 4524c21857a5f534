//! Queues on SQLite: the list with tasks counted per queue and status, and the pause switch
//! (resuming a queue wakes this process's workers).

use chrono::Utc;

use super::{SqliteStore, rows::stamp};
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
