//! Housekeeping every process does beside its requests and workers: folding the appended
//! counter deltas into their counters, so that totals stay one short read however many
//! changes were made, and, with a retention period, deleting finished tasks (and their events)
//! that are older than it, so that the tasks table holds what is live plus recent history.
//! Both are safe to run in any number of processes at once.

use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::DynStore;

/// How often the counter deltas are folded.
pub const FOLD_EVERY: Duration = Duration::from_secs(1);
/// How often finished tasks past the retention period are looked for.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Most tasks deleted per statement; a statement that deleted this many is followed at once
/// by another, so a backlog drains in short transactions.
pub const PRUNE_BATCH: i64 = 5_000;

/// Folds counter deltas every [`FOLD_EVERY`] and, with a `retention`, prunes finished tasks
/// older than it every [`PRUNE_EVERY`], until `stop` is cancelled.
pub fn spawn(
    store: DynStore,
    retention: Option<Duration>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut next_prune = tokio::time::Instant::now();
        loop {
            if let Err(err) = store.fold_counters().await {
                tracing::debug!(error = %err, "cannot fold counters now; totals stay exact");
            }
            if let Some(kept) = retention
                && tokio::time::Instant::now() >= next_prune
            {
                prune(&store, kept).await;
                next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(FOLD_EVERY) => {}
            }
        }
    })
}

/// Deletes finished tasks that finished more than `kept` ago, batch after batch.
async fn prune(store: &DynStore, kept: Duration) {
    let Some(cutoff) = chrono::Duration::from_std(kept)
        .ok()
        .and_then(|kept| Utc::now().checked_sub_signed(kept))
    else {
        return; // a retention reaching before the calendar starts keeps everything
    };
    let mut deleted = 0;
    loop {
        match store.prune_finished(cutoff, PRUNE_BATCH).await {
            Ok(n) => {
                deleted += n;
                if (n as i64) < PRUNE_BATCH {
                    break;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot prune finished tasks now");
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "pruned finished tasks past the retention period");
    }
}
