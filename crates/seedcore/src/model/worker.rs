//! Worker processes as registered in the store, for operators.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A process that runs tasks (`serve` with workers, or `worker`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Worker {
    /// `host:pid:nonce`; tasks it runs carry it as `worker_id`.
    pub id: String,
    /// The machine's hostname.
    pub host: String,
    /// The operating system's process id.
    pub pid: i32,
    /// The seedcore version the process runs.
    pub version: String,
    /// Tasks it runs at once on the normal path.
    pub concurrency: i32,
    /// Tasks it runs at once on the escalated path.
    pub escalated_concurrency: i32,
    /// Seconds each lease it takes lasts; silence for two leases marks it lost.
    pub lease_seconds: f64,
    /// When the process registered.
    pub started_at: DateTime<Utc>,
    /// Renewed with every heartbeat (a third of the lease).
    pub last_seen_at: DateTime<Utc>,
    /// Set on a graceful stop; a crashed process never sets it.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// Whether a registered worker is still there, judged from its heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Heartbeating.
    Active,
    /// Stopped gracefully.
    Stopped,
    /// Silent for longer than two leases without saying goodbye: crashed or cut off.
    Lost,
}

impl Worker {
    /// Whether the worker is active, stopped or lost as of `now`.
    pub fn state(&self, now: DateTime<Utc>) -> WorkerState {
        if self.stopped_at.is_some() {
            return WorkerState::Stopped;
        }
        let silent = (now - self.last_seen_at).as_seconds_f64();
        if silent > 2.0 * self.lease_seconds {
            WorkerState::Lost
        } else {
            WorkerState::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(last_seen_secs_ago: i64, stopped: bool) -> Worker {
        let now = Utc::now();
        Worker {
            id: "h:1:a".into(),
            host: "h".into(),
            pid: 1,
            version: "0".into(),
            concurrency: 1,
            escalated_concurrency: 1,
            lease_seconds: 30.0,
            started_at: now,
            last_seen_at: now - chrono::Duration::seconds(last_seen_secs_ago),
            stopped_at: stopped.then_some(now),
        }
    }

    #[test]
    fn a_worker_is_lost_once_silent_for_two_leases() {
        let now = Utc::now();
        assert_eq!(worker(10, false).state(now), WorkerState::Active);
        assert_eq!(worker(61, false).state(now), WorkerState::Lost);
        assert_eq!(worker(61, true).state(now), WorkerState::Stopped);
    }
}
