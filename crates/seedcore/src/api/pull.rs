//! The pull API: workers in other processes, in any language, register, claim tasks over HTTP
//! with a long poll, and heartbeat, complete, fail or release each attempt by its lease token.
//!
//! Invariants:
//! - claims go through `Store::claim_tasks`, as the built-in workers' do, so paused queues,
//!   priorities and `run_at` hold the same way; a finished, renewed or released attempt goes
//!   through the store's fenced methods, so a stale or unknown lease token changes nothing
//!   and is answered 409 `{"detail": "lease lost"}`;
//! - a long poll claims only when it is about to answer. A client that hangs up after the
//!   claim committed leaves its tasks running under leases nobody renews: they expire and the
//!   reaper puts them back (the attempt counted), as for a worker that crashed;
//! - the long poll is bounded by `wait_ms` (at most 30 s); the server gives it the request
//!   timeout plus that longest wait (see `server::gate`), so a short timeout setting does not
//!   cut a poll short;
//! - a completion or failure is remembered with its lease token for a day, so repeating it with
//!   the same token answers the same outcome instead of 409; those arriving together are
//!   recorded in one transaction (`finisher`), each answered only after it committed;
//! - a retryable failure ends by the engine's own rule (`RetryPolicy::after_failure`).

mod bodies;
mod claims;
mod finisher;
mod leases;
mod wakeups;
mod workers;

use std::{sync::Arc, time::Duration};

use super::ApiError;
use crate::{engine::RetryPolicy, store::StoreError};
pub use bodies::{MAX_CLAIM_WAIT, MAX_LEASE_SECONDS};
pub use claims::*;
pub use leases::*;
pub use wakeups::Wakeups;
pub use workers::*;

/// What the pull API needs beyond the store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PullSettings {
    /// A lease's length when the claim or heartbeat does not say (at most [`MAX_LEASE_SECONDS`]).
    pub default_lease: Duration,
    /// How long a retryable failure waits before the next attempt: the engine's policy.
    pub retry: RetryPolicy,
    /// How often a waiting claim queries again when nothing woke it: what notices a `run_at`
    /// coming due (nothing signals that) or a lost wake-up.
    pub recheck: Duration,
}

impl Default for PullSettings {
    fn default() -> Self {
        let engine = crate::engine::EngineSettings::default();
        PullSettings {
            default_lease: engine.lease,
            retry: engine.retry,
            recheck: Duration::from_secs(1),
        }
    }
}

/// The pull API's settings and the wake-ups its long polls share.
#[derive(Default)]
pub struct Pull {
    settings: PullSettings,
    wakeups: Wakeups,
    finisher: Arc<finisher::Finisher>,
}

impl Pull {
    /// The pull API with these settings; a default lease over the cap is held to the cap.
    pub fn new(settings: PullSettings) -> Pull {
        let cap = Duration::from_secs_f64(MAX_LEASE_SECONDS);
        Pull {
            settings: PullSettings {
                default_lease: settings.default_lease.min(cap),
                ..settings
            },
            wakeups: Wakeups::default(),
            finisher: Arc::default(),
        }
    }
}

const LEASE_LOST: &str = "lease lost";

fn lease_lost() -> ApiError {
    ApiError::Conflict(LEASE_LOST.into())
}

fn worker_error(err: StoreError) -> ApiError {
    ApiError::from_store(err, || "Worker not found".into())
}

fn store_error(err: StoreError) -> ApiError {
    ApiError::from_store(err, || "Task not found".into())
}
