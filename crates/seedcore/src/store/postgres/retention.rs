//! Housekeeping on PostgreSQL: moving finished tasks out of the hot table into the history,
//! pruning finished tasks past the retention period (the history's oldest first), and folding
//! the appended counter deltas into the counters that answer totals.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::StoreResult;

pub(super) async fn prune(store: &PgStore, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
    let mut deleted = 0;
    // The history holds the oldest; the hot table's turn comes when it has fewer.
    for sql in [
        include_str!("sql/prune_history.sql"),
        include_str!("sql/prune.sql"),
    ] {
        let left = limit - deleted as i64;
        if left <= 0 {
            break;
        }
        deleted += sqlx::query(sql)
            .bind(cutoff)
            .bind(left)
            .execute(&store.pool)
            .await?
            .rows_affected();
    }
    if deleted > 0 {
        // Workflows whose tasks were all pruned go too.
        sqlx::query(
            "delete from workflows w where w.created_at < $1 \
             and not exists (select 1 from all_tasks t where t.workflow_id = w.id)",
        )
        .bind(cutoff)
        .execute(&store.pool)
        .await?;
    }
    Ok(deleted)
}

pub(super) async fn archive(
    store: &PgStore,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> StoreResult<u64> {
    let moved: i64 = sqlx::query_scalar("select seedcore_archive($1, $2)")
        .bind(cutoff)
        .bind(limit)
        .fetch_one(&store.pool)
        .await?;
    Ok(moved as u64)
}

pub(super) async fn fold_counters(store: &PgStore) -> StoreResult<u64> {
    let folded: i64 = sqlx::query_scalar("select seedcore_fold_counters()")
        .fetch_one(&store.pool)
        .await?;
    Ok(folded as u64)
}
