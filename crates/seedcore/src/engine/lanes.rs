//! Lanes: the paths a process claims work on, each with its own slots, filter and timeout.
//!
//! - `fast`: tasks below the drift threshold, of the served queues except those with a limit;
//! - `escalated`: the same queues, tasks at or above the threshold (own slots and timeout);
//! - one lane per queue with a concurrency limit: that queue's tasks, whatever their drift (a
//!   task at or above the threshold still runs on the escalated path, within the queue's limit).
//!
//! A lane with no slots is not created, so its tasks are left to other processes.
//!
//! A drift lane with enough slots keeps [`CLAIMERS`] claims in flight at once, each over its
//! share of the slots; a queue's own lane keeps one, since claims on a limited queue wait for
//! each other on the queue's row anyway.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};

use super::EngineSettings;
use crate::store::DriftRange;

/// Claims a drift lane keeps in flight. With one, a lane whose handlers are quick sat idle
/// for each claim's whole round trip and commit; with two, the next claim is already running
/// in the database when one answers.
const CLAIMERS: usize = 2;

/// One path through the engine.
pub(super) struct Lane {
    pub name: String,
    /// Every task of the lane runs on the escalated path.
    pub escalated: bool,
    /// Tasks of the lane at or above the drift threshold run on the escalated path.
    pub escalate_by_drift: bool,
    /// Handlers running at once: `capacity` slots.
    pub slots: Arc<Semaphore>,
    pub capacity: usize,
    /// Claims in flight at once, each by its own loop over the shared slots.
    pub claimers: usize,
    pub drift: DriftRange,
    pub queues: Option<Vec<String>>,
    pub exclude_queues: Vec<String>,
    pub timeout: Duration,
    pub wake: Notify,
}

impl Lane {
    fn new(name: String, capacity: usize, drift: DriftRange, timeout: Duration) -> Lane {
        Lane {
            name,
            escalated: false,
            escalate_by_drift: false,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            claimers: claimers(capacity),
            drift,
            queues: None,
            exclude_queues: Vec::new(),
            timeout,
            wake: Notify::new(),
        }
    }
}

pub(super) fn lanes(settings: &EngineSettings) -> Vec<Lane> {
    let threshold = settings.drift_threshold;
    let served = |queue: &String| settings.queues.as_ref().is_none_or(|q| q.contains(queue));
    let limited: Vec<&(String, usize)> = settings
        .queue_limits
        .iter()
        .filter(|(queue, _)| served(queue))
        .collect();
    let limited_names: Vec<String> = limited.iter().map(|(queue, _)| queue.clone()).collect();

    let mut lanes = Vec::new();
    let below = DriftRange {
        at_least: f64::NEG_INFINITY,
        below: threshold,
    };
    let mut fast = Lane::new(
        "fast".into(),
        settings.concurrency,
        below,
        settings.task_timeout,
    );
    fast.queues = settings.queues.clone();
    fast.exclude_queues = limited_names.clone();
    lanes.push(fast);

    let above = DriftRange {
        at_least: threshold,
        below: f64::INFINITY,
    };
    let mut escalated = Lane::new(
        "escalated".into(),
        settings.escalated_concurrency,
        above,
        settings.escalated_timeout,
    );
    escalated.escalated = true;
    escalated.queues = settings.queues.clone();
    escalated.exclude_queues = limited_names;
    lanes.push(escalated);

    for (queue, limit) in limited {
        let mut lane = Lane::new(
            format!("queue:{queue}"),
            *limit,
            DriftRange::ALL,
            settings.task_timeout,
        );
        lane.escalate_by_drift = true;
        lane.claimers = 1;
        lane.queues = Some(vec![queue.clone()]);
        lanes.push(lane);
    }
    lanes.retain(|lane| lane.slots.available_permits() > 0);
    lanes
}

/// Fewest slots one of several claims in flight gathers. A smaller lane (the escalated path's
/// 4 by default) keeps one claim: splitting it would pay a statement per task or two, and an
/// idle lane's claim still reads the ready tasks its filter skips.
const MIN_SHARE: usize = 8;

/// [`CLAIMERS`] claims in flight when each gets at least [`MIN_SHARE`] slots, else one.
fn claimers(capacity: usize) -> usize {
    if capacity >= CLAIMERS * MIN_SHARE {
        CLAIMERS
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(settings: &EngineSettings) -> Vec<String> {
        lanes(settings).into_iter().map(|l| l.name).collect()
    }

    #[test]
    fn a_limited_queue_gets_a_lane_of_its_own_and_the_others_leave_it_alone() {
        let settings = EngineSettings {
            queue_limits: vec![("emails".into(), 2), ("reports".into(), 1)],
            ..EngineSettings::default()
        };
        let lanes = lanes(&settings);
        let names: Vec<&str> = lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            ["fast", "escalated", "queue:emails", "queue:reports"]
        );
        assert_eq!(lanes[0].exclude_queues, ["emails", "reports"]);
        assert_eq!(lanes[2].queues, Some(vec!["emails".to_string()]));
        assert_eq!(lanes[2].slots.available_permits(), 2);
    }

    #[test]
    fn limits_of_queues_the_process_does_not_serve_are_ignored() {
        let settings = EngineSettings {
            queues: Some(vec!["default".into()]),
            queue_limits: vec![("emails".into(), 2)],
            ..EngineSettings::default()
        };
        assert_eq!(names(&settings), ["fast", "escalated"]);
    }

    #[test]
    fn a_large_drift_lane_keeps_two_claims_in_flight_and_small_or_limited_lanes_one() {
        let settings = EngineSettings {
            queue_limits: vec![("emails".into(), 32)],
            ..EngineSettings::default()
        };
        let claimers: Vec<usize> = lanes(&settings).iter().map(|l| l.claimers).collect();
        assert_eq!(claimers, [2, 1, 1]);
    }

    #[test]
    fn a_lane_without_slots_is_not_created() {
        let settings = EngineSettings {
            escalated_concurrency: 0,
            ..EngineSettings::default()
        };
        assert_eq!(names(&settings), ["fast"]);
    }
}
