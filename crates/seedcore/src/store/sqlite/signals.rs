//! Wake-ups on SQLite: there is no NOTIFY, and one process owns the file, so the store tells
//! the watchers registered in this process after each write that made a task ready or
//! cancelled a running one. Once tasks with parents exist, finishing a task wakes them too:
//! its children may have been queued by the settle trigger.

use std::sync::atomic::Ordering;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::SqliteStore;
use crate::model::{Task, TaskStatus};
use crate::store::{Signal, SignalSink};

impl SqliteStore {
    /// Wakes the workers for new tasks that are ready, and notes tasks that wait for parents.
    pub(super) fn created(&self, tasks: &[Task]) {
        if tasks.iter().any(|t| !t.depends_on.is_empty()) {
            self.dependents.store(true, Ordering::Relaxed);
        }
        if tasks.iter().any(|t| t.status == TaskStatus::Queued) {
            self.watchers.send(Signal::TasksReady);
        }
    }

    /// After tasks reached a final status: their children may be ready now.
    pub(super) fn settled(&self) {
        if self.dependents.load(Ordering::Relaxed) {
            self.watchers.send(Signal::TasksReady);
        }
    }
}

/// Delivers this process's signals to `sink` until `stop` is cancelled.
pub(super) fn watch(
    store: &SqliteStore,
    sink: SignalSink,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let watchers = store.watchers.clone();
    let id = watchers.add(sink);
    tokio::spawn(async move {
        stop.cancelled().await;
        watchers.remove(id);
    })
}
