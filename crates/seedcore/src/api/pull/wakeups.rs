//! The long poll's wake-ups: one watch on the store for the whole API, started by the first
//! claim, fanned out to every waiting claim.
//!
//! Invariants: a claim registers its interest ([`Wakeups::interest`]) BEFORE it queries, so a
//! task made ready between its query and its wait still wakes it; a wake-up is a hint (a lost
//! NOTIFY costs latency only), so a waiting claim also queries again now and then
//! (`PullSettings::recheck`), which is what notices a `run_at` coming due, since nothing
//! signals that.

use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
};

use tokio::sync::{Notify, futures::Notified};
use tokio_util::sync::CancellationToken;

use crate::store::{DynStore, Signal};

/// Wakes waiting claims when the store says tasks became ready.
#[derive(Default)]
pub struct Wakeups {
    ready: Arc<Notify>,
    started: OnceLock<()>,
    stop: CancellationToken,
}

impl Wakeups {
    /// A registered interest in the next wake-up: await it after querying.
    pub fn interest(&self, store: &DynStore) -> Pin<Box<Notified<'_>>> {
        self.start(store);
        let mut notified = Box::pin(self.ready.notified());
        notified.as_mut().enable();
        notified
    }

    fn start(&self, store: &DynStore) {
        self.started.get_or_init(|| {
            let ready = self.ready.clone();
            let sink = Arc::new(move |signal: Signal| {
                if signal == Signal::TasksReady {
                    ready.notify_waiters();
                }
            });
            // The watch lives as long as this API's state: `Drop` stops it.
            drop(store.watch(sink, self.stop.clone()));
        });
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
