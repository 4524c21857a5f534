//! Records attempt outcomes in batches: each finished attempt is handed to one loop per
//! process, which writes everything that arrived while its writes were in flight in a single
//! statement. At low load a batch is one outcome and adds no wait; under load one round trip
//! records many.
//!
//! Up to [`IN_FLIGHT`] batches are written at once, each in its own transaction: the batches
//! hold different tasks (an attempt is handed over once), so they never wait on each other's
//! rows, and commits that overlap share their WAL flush. Every outcome is answered only after
//! its own batch committed.
//!
//! One outcome that the database refuses (a result it cannot store) must not sink the others:
//! a failed batch is retried one outcome at a time, and a result that still cannot be stored
//! fails its task with the reason.

use std::{collections::HashSet, sync::Arc};

use tokio::{
    sync::{Semaphore, mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::store::{DynStore, Lease, Outcome, StoreError};

/// Most outcomes one statement records.
const MAX_BATCH: usize = 256;

/// Batches written at once. One write in flight left the drain waiting on each commit's flush
/// in turn; a second lets the next batch's statement run while the previous one commits.
const IN_FLIGHT: usize = 2;

/// What the completer says about one outcome: recorded, lease lost, or could not be written.
pub type Recorded = Result<bool, Unrecorded>;

/// An outcome that could not be written yet, handed back so that it can be sent again
/// without every attempt keeping a copy of its result.
pub struct Unrecorded {
    pub error: String,
    pub outcome: Outcome,
}

pub struct Completion {
    pub lease: Lease,
    pub outcome: Outcome,
    pub done: oneshot::Sender<Recorded>,
}

pub fn channel() -> (mpsc::Sender<Completion>, mpsc::Receiver<Completion>) {
    mpsc::channel(4 * MAX_BATCH)
}

pub async fn run(store: DynStore, mut inbox: mpsc::Receiver<Completion>, stop: CancellationToken) {
    let writers = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut writing = JoinSet::new();
    loop {
        let first = tokio::select! {
            next = inbox.recv() => match next {
                Some(completion) => completion,
                None => break,
            },
            _ = stop.cancelled() => break,
        };
        // Outcomes that arrive while every writer is busy join this batch.
        let Ok(writer) = writers.clone().acquire_owned().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(completion) => batch.push(completion),
                Err(_) => break,
            }
        }
        let store = store.clone();
        writing.spawn(async move {
            record(&store, batch).await;
            drop(writer);
        });
        while writing.try_join_next().is_some() {}
    }
    // Writes already sent finish, so every outcome handed over is answered.
    while writing.join_next().await.is_some() {}
}

async fn record(store: &DynStore, batch: Vec<Completion>) {
    // The outcomes move into the statement's batch; the answers wait beside it, in order.
    let (pairs, answers): (Vec<(Lease, Outcome)>, Vec<oneshot::Sender<Recorded>>) = batch
        .into_iter()
        .map(|c| ((c.lease, c.outcome), c.done))
        .unzip();
    match store.finish_attempts(&pairs).await {
        Ok(recorded) => {
            let recorded: HashSet<Lease> = recorded.into_iter().collect();
            for ((lease, _), done) in pairs.iter().zip(answers) {
                let _ = done.send(Ok(recorded.contains(lease)));
            }
        }
        Err(err @ StoreError::Unavailable(_)) => {
            let error = err.to_string();
            for ((_, outcome), done) in pairs.into_iter().zip(answers) {
                let error = error.clone();
                let _ = done.send(Err(Unrecorded { error, outcome }));
            }
        }
        Err(_) if pairs.len() > 1 => {
            for ((lease, outcome), done) in pairs.into_iter().zip(answers) {
                let one = Completion {
                    lease,
                    outcome,
                    done,
                };
                Box::pin(record(store, vec![one])).await;
            }
        }
        Err(err) => {
            for ((lease, outcome), done) in pairs.into_iter().zip(answers) {
                let _ = done.send(record_refused(store, lease, outcome, &err).await);
            }
        }
    }
}

/// The database refused this outcome itself: a completed task whose result cannot be stored
/// fails with the reason instead of being retried forever.
async fn record_refused(
    store: &DynStore,
    lease: Lease,
    outcome: Outcome,
    err: &StoreError,
) -> Recorded {
    tracing::error!(task_id = %lease.task_id, error = %err, "cannot record the attempt's outcome");
    let Outcome::Completed(_) = outcome else {
        let error = err.to_string();
        return Err(Unrecorded { error, outcome });
    };
    let failed = Outcome::Failed(format!("the handler's result could not be stored: {err}"));
    store
        .finish_attempt(lease, failed)
        .await
        .map_err(|err| Unrecorded {
            error: err.to_string(),
            outcome,
        })
}
