//! The hints a store gives the workers ([`Signal`]), and the sinks registered by `watch` in
//! this process, for stores that signal their own process directly (SQLite always; PostgreSQL
//! before NOTIFY makes the round trip).

use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// A hint from the store to the workers of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Some task became ready to claim.
    TasksReady,
    /// This task was cancelled; whoever runs it should stop.
    Cancelled(Uuid),
}

/// Where a store delivers [`Signal`]s.
pub type SignalSink = Arc<dyn Fn(Signal) + Send + Sync>;

/// The signal sinks registered by `watch` in this process.
#[derive(Default)]
pub(crate) struct Watchers {
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    last_id: u64,
    sinks: Vec<(u64, SignalSink)>,
}

impl Watchers {
    pub(crate) fn add(&self, sink: SignalSink) -> u64 {
        let mut registry = self.registry.lock().expect("watchers");
        registry.last_id += 1;
        let id = registry.last_id;
        registry.sinks.push((id, sink));
        id
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut registry = self.registry.lock().expect("watchers");
        registry.sinks.retain(|(i, _)| *i != id);
    }

    /// Calls every sink, outside the lock: a sink may take locks of its own.
    pub(crate) fn send(&self, signal: Signal) {
        let sinks: Vec<SignalSink> = {
            let registry = self.registry.lock().expect("watchers");
            registry
                .sinks
                .iter()
                .map(|(_, sink)| sink.clone())
                .collect()
        };
        for sink in sinks {
            sink(signal);
        }
    }
}
