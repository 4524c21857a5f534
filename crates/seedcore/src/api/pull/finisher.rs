//! Pull completions and failures recorded in batches: each request queues its outcome and
//! waits for its answer; while one write is in flight the outcomes that arrive queue up, and
//! the next write records all of them in one transaction. At low load a batch is the one
//! outcome and adds no wait; under load one round trip records many, as the built-in workers'
//! completer does.
//!
//! Invariants: at most one batch write per process is in flight, holding each task at most
//! once; every queued outcome gets an answer (recorded, lease lost, or the store's error), even
//! if its request went away, so an acknowledged completion is committed and an abandoned one is
//! still recorded. One outcome the database refuses does not sink the others: a failed batch is
//! retried one outcome at a time.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::oneshot;

use crate::store::{DynStore, Lease, Outcome, StoreError, StoreResult};

/// Most outcomes one transaction records.
const MAX_BATCH: usize = 256;

/// The queue of outcomes waiting for a write, shared by the requests of one process.
#[derive(Default)]
pub struct Finisher {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    queue: Vec<Entry>,
    writing: bool,
}

struct Entry {
    lease: Lease,
    outcome: Outcome,
    done: oneshot::Sender<StoreResult<bool>>,
}

impl Finisher {
    /// Records the outcome under the lease; false when the lease was not current.
    pub async fn finish(
        self: &Arc<Self>,
        store: &DynStore,
        lease: Lease,
        outcome: Outcome,
    ) -> StoreResult<bool> {
        let recorded = self.finish_many(store, vec![(lease, outcome)]).await?;
        Ok(recorded.first().copied().unwrap_or(false))
    }

    /// Records each outcome under its lease, all queued at once so they share a write; for
    /// each, whether its lease was current.
    pub async fn finish_many(
        self: &Arc<Self>,
        store: &DynStore,
        outcomes: Vec<(Lease, Outcome)>,
    ) -> StoreResult<Vec<bool>> {
        let mut answers = Vec::with_capacity(outcomes.len());
        let start_writer = {
            let mut pending = self.lock();
            for (lease, outcome) in outcomes {
                let (done, answer) = oneshot::channel();
                pending.queue.push(Entry {
                    lease,
                    outcome,
                    done,
                });
                answers.push(answer);
            }
            !std::mem::replace(&mut pending.writing, true)
        };
        if start_writer {
            tokio::spawn(write_batches(self.clone(), store.clone()));
        }
        let mut recorded = Vec::with_capacity(answers.len());
        for answer in answers {
            recorded.push(
                answer
                    .await
                    .unwrap_or(Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed)))?,
            );
        }
        Ok(recorded)
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // The guarded data stays consistent even if a holder panicked: it only moves entries.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next batch, or None (and no writer any more) when nothing is queued. A batch holds
    /// each task once: a second outcome for the same task (a repeat, or a completion racing a
    /// failure) waits for the next batch, so that it meets the first one's result, as it would
    /// one request after the other.
    fn next_batch(&self) -> Option<Vec<Entry>> {
        let mut pending = self.lock();
        if pending.queue.is_empty() {
            pending.writing = false;
            return None;
        }
        let mut tasks = HashSet::new();
        let (batch, later): (Vec<Entry>, Vec<Entry>) = pending
            .queue
            .drain(..)
            .partition(|entry| tasks.len() < MAX_BATCH && tasks.insert(entry.lease.task_id));
        pending.queue = later;
        Some(batch)
    }
}

/// If the writer dies (a panic in the store), answers every queued request 503 and lets the
/// next request start a writer: queued requests would otherwise wait forever.
struct WriterGuard(Arc<Finisher>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut pending = self.0.lock();
            pending.queue.clear();
            pending.writing = false;
        }
    }
}

async fn write_batches(finisher: Arc<Finisher>, store: DynStore) {
    let _guard = WriterGuard(finisher.clone());
    while let Some(batch) = finisher.next_batch() {
        write(&store, batch).await;
    }
}

async fn write(store: &DynStore, batch: Vec<Entry>) {
    let outcomes: Vec<(Lease, Outcome)> = batch
        .iter()
        .map(|entry| (entry.lease, entry.outcome.clone()))
        .collect();
    match store.finish_remembered(&outcomes).await {
        Ok(recorded) => {
            for entry in batch {
                let _ = entry.done.send(Ok(recorded.contains(&entry.lease)));
            }
        }
        Err(err) if batch.len() == 1 => {
            let _ = batch
                .into_iter()
                .next()
                .map(|entry| entry.done.send(Err(err)));
        }
        Err(err) => {
            tracing::debug!(error = %err, outcomes = batch.len(), "a batch of pull outcomes failed; recording them one at a time");
            for (entry, one) in batch.into_iter().zip(outcomes) {
                let answer = store
                    .finish_remembered(std::slice::from_ref(&one))
                    .await
                    .map(|recorded| !recorded.is_empty());
                let _ = entry.done.send(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use uuid::Uuid;

    use super::*;

    fn queue(finisher: &Finisher, task_id: Uuid) {
        let (done, _) = oneshot::channel();
        let lease = Lease {
            task_id,
            token: Uuid::new_v4(),
        };
        let outcome = Outcome::Completed(Value::Null);
        finisher.lock().queue.push(Entry {
            lease,
            outcome,
            done,
        });
    }

    #[test]
    fn a_second_outcome_for_a_task_waits_for_the_next_batch() {
        let finisher = Finisher::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for task in [a, b, a] {
            queue(&finisher, task);
        }
        let tasks = |batch: Vec<Entry>| batch.iter().map(|e| e.lease.task_id).collect::<Vec<_>>();
        assert_eq!(tasks(finisher.next_batch().unwrap()), [a, b]);
        assert_eq!(tasks(finisher.next_batch().unwrap()), [a]);
        assert!(finisher.next_batch().is_none());
        assert!(!finisher.lock().writing);
    }
}
