//! The types of the workers' side of the store: what a claim asks for, the lease that lets a
//! worker finish an attempt, and how an attempt ended.
//!
//! A lease is current from the claim that hands it out until the task is finished, cancelled,
//! rescued, released or claimed again; only a current lease finishes, renews or releases.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{Task, TaskStatus};

/// Which tasks a claim may take, by drift score: `at_least <= drift_score < below`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftRange {
    /// Lowest drift score taken (inclusive).
    pub at_least: f64,
    /// Drift score from which tasks are left to another lane (exclusive).
    pub below: f64,
}

impl DriftRange {
    /// Every task, whatever its drift score.
    pub const ALL: DriftRange = DriftRange {
        at_least: f64::NEG_INFINITY,
        below: f64::INFINITY,
    };
}

/// A request to claim ready tasks for one worker lane.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The claiming process, recorded as each task's `worker_id`.
    pub worker_id: String,
    /// Most tasks to take: the lane's free slots.
    pub limit: i64,
    /// How long each lease lasts unless renewed.
    pub lease: Duration,
    /// The drift scores the lane takes.
    pub drift: DriftRange,
    /// Only tasks of these queues; None takes every queue.
    pub queues: Option<Vec<String>>,
    /// Never tasks of these queues (other lanes serve them).
    pub exclude_queues: Vec<String>,
    /// Only tasks of these types; None takes every type.
    pub types: Option<Vec<String>>,
}

impl Claim {
    /// A claim of up to `limit` tasks of any queue and any drift score.
    pub fn any(worker_id: impl Into<String>, limit: i64, lease: Duration) -> Claim {
        Claim {
            worker_id: worker_id.into(),
            limit,
            lease,
            drift: DriftRange::ALL,
            queues: None,
            exclude_queues: Vec::new(),
            types: None,
        }
    }
}

/// The right to finish one attempt of a task: valid while the token is the task's current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The task the lease is on.
    pub task_id: Uuid,
    /// New with every claim; stale once the task is cancelled, rescued, released or claimed again.
    pub token: Uuid,
}

/// A task a worker claimed, with the lease that lets it finish the attempt.
#[derive(Clone, Debug)]
pub struct ClaimedTask {
    /// The task as claimed: `running`, with this attempt counted.
    pub task: Task,
    /// What finishes, renews or releases the attempt.
    pub lease: Lease,
    /// The W3C `traceparent` the task was created under, if any.
    pub traceparent: Option<String>,
}

/// A running task whose lease expired, taken back by the rescue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rescued {
    /// The task's queue.
    pub queue: String,
    /// The task's type.
    pub task_type: String,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Success: the result envelope to store.
    Completed(Value),
    /// A retryable failure with attempts left: wait, then run again.
    Retry {
        /// Why the attempt failed; stored as the task's `error`.
        error: String,
        /// When the task may be claimed again.
        run_at: DateTime<Utc>,
    },
    /// A failure that is final.
    Failed(String),
}

impl Outcome {
    /// The status the outcome leaves its task in.
    pub fn status(&self) -> TaskStatus {
        match self {
            Outcome::Completed(_) => TaskStatus::Completed,
            Outcome::Retry { .. } => TaskStatus::Retry,
            Outcome::Failed(_) => TaskStatus::Failed,
        }
    }
}

/// A worker of this process that can take a task at its creation, without a claim: the store
/// asks it before writing a ready task, and writes the task as claimed by it when it holds a
/// slot (see `StartSlot`). A backend that cannot write a task claimed never asks.
pub trait LocalStarter: Send + Sync {
    /// A slot for a new task of `queue` with `drift_score`, when a lane of this worker that
    /// would claim that task waits for work and has one free; None otherwise.
    fn reserve(&self, queue: &str, drift_score: f64) -> Option<StartSlot>;
}

/// A worker's slot held for one task being created. Dropped unused, the slot is free again.
pub struct StartSlot {
    /// The worker the task is written as claimed by.
    pub worker_id: String,
    /// How long the lease lasts unless renewed.
    pub lease: Duration,
    start: Box<dyn FnOnce(ClaimedTask) + Send + Sync>,
}

impl StartSlot {
    /// A slot of `worker_id`'s whose task, once written claimed, `start` runs.
    pub fn new(
        worker_id: String,
        lease: Duration,
        start: impl FnOnce(ClaimedTask) + Send + Sync + 'static,
    ) -> StartSlot {
        StartSlot {
            worker_id,
            lease,
            start: Box::new(start),
        }
    }

    /// Runs `claimed`, the task written as claimed with this slot, in its slot.
    pub fn start(self, claimed: ClaimedTask) {
        (self.start)(claimed);
    }
}
