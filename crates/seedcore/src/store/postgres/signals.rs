//! Wake-ups on PostgreSQL: this process's watchers are told at once, the other processes
//! through LISTEN/NOTIFY (sent by the triggers in the migrations, so every code path signals,
//! and by [`PgStore::announce`] for creates, coalesced so a burst costs a couple of
//! notifications). A lost notification costs latency only: polling remains the guarantee.
//!
//! The listener owns its connection, opened beside the store's pool and never returned to it:
//! a pooled connection that carried a LISTEN back into the pool would hand notifications to
//! whatever statement ran on it next, which fails with "unexpected message". On any error the
//! listener and its connection are dropped whole and a fresh one subscribes, so a server
//! restart or a database dropped and created again costs a reconnect, never a poisoned pool.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use sqlx::postgres::{PgListener, PgNotification, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::PgStore;
use crate::store::{Signal, SignalSink};

const TASKS_CHANNEL: &str = "seedcore_tasks";
const CANCEL_CHANNEL: &str = "seedcore_cancel";

/// How long the listener waits for its own connection before trying again.
const LISTENER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
        loop {
            let Some(mut listener) = self.subscribed(stop).await else {
                return;
            };
            // Notifications sent while no one listened are lost: look for work now. The first
            // subscription too: a process's first look for work may come before its LISTEN
            // took effect, and a task announced in between would wait for the poll.
            sink(Signal::TasksReady);
            let lost = loop {
                let received = tokio::select! {
                    _ = stop.cancelled() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(note)) => self.deliver(&note, sink),
                    // The connection dropped. sqlx has subscribed again on a new one, but that
                    // one was seen to miss NOTIFYs after a server restart: start afresh.
                    Ok(None) => break None,
                    Err(err) => break Some(err),
                }
            };
            // Dropped whole: the connection goes with its own pool, never to the store's.
            drop(listener);
            if let Some(err) = lost {
                tracing::warn!(error = %err, "wake-up listener lost its connection; reconnecting");
            }
            if sleep_or_stop(stop, Duration::from_secs(1)).await {
                return;
            }
        }
    }

    fn deliver(&self, note: &PgNotification, sink: &SignalSink) {
        if note.channel() == CANCEL_CHANNEL {
            if let Ok(id) = note.payload().parse() {
                sink(Signal::Cancelled(id));
            }
        } else if note.payload() != self.announcer.origin {
            sink(Signal::TasksReady);
        }
    }

    /// A listener subscribed to both channels, retried each second until it is or `stop` is
    /// cancelled (then `None`).
    async fn subscribed(&self, stop: &CancellationToken) -> Option<PgListener> {
        loop {
            match self.subscribe().await {
                Ok(listener) => return Some(listener),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for wake-ups yet; polling meanwhile");
                    if sleep_or_stop(stop, Duration::from_secs(1)).await {
                        return None;
                    }
                }
            }
        }
    }

    /// A listener on a connection of its own: a pool of one, with the store's connect
    /// options, that nothing else draws from.
    async fn subscribe(&self) -> Result<PgListener, sqlx::Error> {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(LISTENER_CONNECT_TIMEOUT)
            .connect_lazy_with((*self.pool.connect_options()).clone());
        let mut listener = PgListener::connect_with(&own).await?;
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
