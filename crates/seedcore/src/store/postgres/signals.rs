//! Wake-ups on PostgreSQL: this process's watchers are told at once, the other processes
//! through LISTEN/NOTIFY (sent by the triggers in the migrations, so every code path signals,
//! and by [`PgStore::announce`] for creates, coalesced so a burst costs a couple of
//! notifications). A lost notification costs latency only: polling remains the guarantee.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::PgStore;
use crate::store::{Signal, SignalSink};

const TASKS_CHANNEL: &str = "seedcore_tasks";
const CANCEL_CHANNEL: &str = "seedcore_cancel";

/// Coalesces announcements of new work: one NOTIFY at a time per process, and the requests
/// made while one is in flight are covered by one more after it. A burst of enqueues costs a
/// couple of notifications, none of them inside an enqueuing transaction.
pub(super) struct Announcer {
    /// Requests not yet covered by a NOTIFY sent after them; non-zero while a sender runs.
    pending: AtomicUsize,
    /// The payload of this store's NOTIFYs. Its own watchers were woken before the NOTIFY was
    /// sent, so its listener drops the echo instead of waking every lane a second time (each
    /// wake-up of an idle lane costs a claim statement).
    origin: String,
}

impl Default for Announcer {
    fn default() -> Self {
        Announcer {
            pending: AtomicUsize::new(0),
            origin: Uuid::new_v4().to_string(),
        }
    }
}

impl PgStore {
    /// Tells the workers of every process that tasks are ready: this process's at once, the
    /// others through NOTIFY.
    pub(super) fn announce(&self) {
        self.watchers.send(Signal::TasksReady);
        if self.announcer.pending.fetch_add(1, Ordering::SeqCst) > 0 {
            return; // the running sender will cover this request
        }
        let (pool, announcer) = (self.pool.clone(), self.announcer.clone());
        tokio::spawn(async move {
            loop {
                let covered = announcer.pending.load(Ordering::SeqCst);
                if let Err(err) = sqlx::query("select pg_notify('seedcore_tasks', $1)")
                    .bind(&announcer.origin)
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %err, "cannot announce new tasks; workers will poll");
                }
                let done = announcer.pending.compare_exchange(
                    covered,
                    0,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                if done.is_ok() {
                    return;
                }
            }
        });
    }

    async fn listen(&self, sink: &SignalSink, stop: &CancellationToken) {
        let mut listener = loop {
            match self.subscribe().await {
                Ok(listener) => break listener,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for wake-ups yet; polling meanwhile");
                    if sleep_or_stop(stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        loop {
            let received = tokio::select! {
                _ = stop.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(note)) if note.channel() == CANCEL_CHANNEL => {
                    if let Ok(id) = note.payload().parse() {
                        sink(Signal::Cancelled(id));
                    }
                }
                Ok(Some(note)) if note.payload() == self.announcer.origin => {}
                Ok(Some(_)) => sink(Signal::TasksReady),
                // The connection dropped and will be re-established by the next call:
                // notifications may have been missed, so look for work now.
                Ok(None) => sink(Signal::TasksReady),
                Err(err) => {
                    tracing::warn!(error = %err, "wake-up listener lost its connection; retrying");
                    if sleep_or_stop(stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        }
    }

    async fn subscribe(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all([TASKS_CHANNEL, CANCEL_CHANNEL]).await?;
        Ok(listener)
    }
}

/// Sleeps, or returns true early when asked to stop.
async fn sleep_or_stop(stop: &CancellationToken, pause: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(pause) => false,
    }
}

/// Starts delivering signals to `sink`: this process's at once, the others' as they arrive,
/// until `stop` is cancelled.
pub(super) fn watch(store: &PgStore, sink: SignalSink, stop: CancellationToken) -> JoinHandle<()> {
    let store = store.clone();
    let local = store.watchers.add(sink.clone());
    tokio::spawn(async move {
        store.listen(&sink, &stop).await;
        store.watchers.remove(local);
    })
}
