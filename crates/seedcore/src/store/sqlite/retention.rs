//! Housekeeping on SQLite: pruning finished tasks past the retention period, with their
//! events and parent edges, and the workflows left without tasks. Every task stays in one
//! table, so there is nothing to move to a history and no counter to fold.

use chrono::{DateTime, Utc};

use super::{
    SqliteStore,
    rows::{json_text, stamp},
};
use crate::store::StoreResult;

/// Workflows created before ?1 whose tasks were all pruned.
const EMPTY_WORKFLOWS: &str = "delete from workflows where created_at < ?1 \
     and not exists (select 1 from tasks where tasks.workflow_id = workflows.id)";

pub(super) async fn prune(
    store: &SqliteStore,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> StoreResult<u64> {
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let ids: Vec<String> = sqlx::query_scalar(include_str!("sql/prune.sql"))
        .bind(stamp(cutoff))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    let deleted = ids.len() as u64;
    let ids = json_text(&ids)?;
    for sql in [
        "delete from task_events where task_id in (select value from json_each(?1))",
        "delete from task_dependencies where task_id in (select value from json_each(?1))",
    ] {
        sqlx::query(sql).bind(&ids).execute(&mut *tx).await?;
    }
    if deleted > 0 {
        sqlx::query(EMPTY_WORKFLOWS)
            .bind(stamp(cutoff))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(deleted)
}
