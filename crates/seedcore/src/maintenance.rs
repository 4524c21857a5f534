//! Housekeeping every process does beside its requests and workers: folding the appended
//! counter deltas into their counters, so that totals stay one short read however many
//! changes were made. Safe to run in any number of processes at once.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::DynStore;

/// How often the counter deltas are folded.
pub const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Folds counter deltas every [`FOLD_EVERY`] until `stop` is cancelled.
pub fn spawn(store: DynStore, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(err) = store.fold_counters().await {
                tracing::debug!(error = %err, "cannot fold counters now; totals stay exact");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(FOLD_EVERY) => {}
            }
        }
    })
}
