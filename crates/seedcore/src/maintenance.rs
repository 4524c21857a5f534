//! Housekeeping every process does beside its requests and workers: folding the appended
//! counter deltas into their counters, so that totals stay one short read however many
//! changes were made; moving finished tasks a few minutes old out of the hot table into the
//! history (stores with one table have nothing to move), so that claims and completions touch
//! small indexes however much history there is; and, with a retention period, deleting
//! finished tasks (and their events) older than it; and rescuing the tasks whose lease
//! expired. All are safe to run in any number of processes at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    metrics::{self, AttemptOutcome},
    store::{DynStore, StoreResult},
};

/// How often the counter deltas are folded.
pub const FOLD_EVERY: Duration = Duration::from_secs(1);
/// How often finished tasks to move or past the retention period are looked for.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Most tasks moved or deleted per statement; a statement that did this many is followed at
/// once by another, so a backlog drains in short transactions.
pub const PRUNE_BATCH: i64 = 5_000;

/// Where finished tasks are kept, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keeping {
    /// How long a finished task stays in the hot table before it moves to the history.
    pub archive_after: Duration,
    /// How long a finished task is kept at all; None keeps it forever.
    pub retention: Option<Duration>,
}

/// The same defaults as the `seedcore` binary's: five minutes in the hot table, kept forever.
impl Default for Keeping {
    fn default() -> Self {
        Keeping {
            archive_after: Duration::from_secs(300),
            retention: None,
        }
    }
}

/// Folds counter deltas every [`FOLD_EVERY`] and, every [`PRUNE_EVERY`], moves finished tasks
/// older than `keeping.archive_after` to the history and prunes those older than its
/// retention, until `stop` is cancelled.
pub fn spawn(store: DynStore, keeping: Keeping, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut next_prune = tokio::time::Instant::now();
        loop {
            if let Err(err) = store.fold_counters().await {
                tracing::debug!(error = %err, "cannot fold counters now; totals stay exact");
            }
            if tokio::time::Instant::now() >= next_prune {
                archive(&store, keeping.archive_after).await;
                if let Some(kept) = keeping.retention {
                    prune(&store, kept).await;
                }
                next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(FOLD_EVERY) => {}
            }
        }
    })
}

/// Requeues (or fails) running tasks whose lease expired, every half `lease` (within 0.25 to
/// 5 s), until `stop` is cancelled. Every process runs it, with workers or without: the
/// leases of workers elsewhere (over the pull API) expire too.
pub fn spawn_reaper(store: DynStore, lease: Duration, stop: CancellationToken) -> JoinHandle<()> {
    let every = (lease / 2).clamp(Duration::from_millis(250), Duration::from_secs(5));
    tokio::spawn(async move {
        loop {
            match store.rescue_expired_tasks().await {
                Ok(rescued) if rescued.is_empty() => {}
                Ok(rescued) => {
                    for task in &rescued {
                        let expired = AttemptOutcome::LeaseExpired;
                        metrics::attempt_ended(&task.queue, &task.task_type, expired);
                    }
                    tracing::warn!(
                        rescued = rescued.len(),
                        "requeued tasks whose worker stopped renewing their lease"
                    )
                }
                Err(err) => tracing::warn!(error = %err, "cannot rescue expired leases"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// Moves tasks that finished more than `after` ago to the history, batch after batch.
async fn archive(store: &DynStore, after: Duration) {
    let Some(cutoff) = cutoff(after) else { return };
    let moved = in_batches(|| store.archive_finished(cutoff, PRUNE_BATCH)).await;
    match moved {
        Ok(0) => {}
        Ok(moved) => tracing::debug!(moved, "moved finished tasks to the history"),
        Err(err) => tracing::warn!(error = %err, "cannot move finished tasks to the history now"),
    }
}

/// Deletes finished tasks that finished more than `kept` ago, batch after batch.
async fn prune(store: &DynStore, kept: Duration) {
    let Some(cutoff) = cutoff(kept) else { return };
    match in_batches(|| store.prune_finished(cutoff, PRUNE_BATCH)).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "pruned finished tasks past the retention period"),
        Err(err) => tracing::warn!(error = %err, "cannot prune finished tasks now"),
    }
}

/// The moment `ago` before now; None when that is before the calendar starts (which keeps
/// everything).
fn cutoff(ago: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| Utc::now().checked_sub_signed(ago))
}

/// Runs `step` until it does less than a full batch; the rows it did in all. An error ends
/// the round (the next one tries again) and is returned when nothing was done before it.
async fn in_batches<Fut>(step: impl Fn() -> Fut) -> StoreResult<u64>
where
    Fut: Future<Output = StoreResult<u64>>,
{
    let mut done = 0;
    loop {
        match step().await {
            Ok(n) if (n as i64) < PRUNE_BATCH => return Ok(done + n),
            Ok(n) => done += n,
            Err(err) if done == 0 => return Err(err),
            Err(err) => {
                tracing::debug!(error = %err, done, "housekeeping round ends early");
                return Ok(done);
            }
        }
    }
}
