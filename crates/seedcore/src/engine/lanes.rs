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
//!
//! Claiming ahead. A claim takes the lane's free slots, and, while the lane's handlers are
//! quick (their runs average under [`QUICK_RUN`]), up to [`AHEAD_PER_SLOT`] more tasks per slot
//! that wait here for a slot to free. Quick handlers free their slots long before the next
//! claim answers, so a lane that claimed only free slots sat idle for every round trip; held
//! tasks keep the slots busy and let each statement carry more tasks. A held task is `running`
//! in the store from its claim (its lease renewed like any other). It normally waits a few quick
//! runs; one still waiting after [`HOLD_LIMIT`] (a slow handler took the slot it waited for) or
//! when the process stops claiming goes back to the queue uncounted, for any process to take,
//! and the lane counts the wait as a slow run, so it stops claiming ahead until runs are quick
//! again.
//! Invariants: handlers running at once never exceed `capacity`; tasks held beyond the slots
//! never exceed `capacity * AHEAD_PER_SLOT`, and a lane whose handlers are slow, or a queue's
//! own lane (whose limit counts running tasks), holds none. A stored queue limit holds as
//! before: the claim counts held tasks among the queue's running ones.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::EngineSettings;
use crate::store::DriftRange;

/// Most tasks one claim statement takes.
const MAX_CLAIM_BATCH: usize = 200;

/// Longest a busy lane waits for more slots to free before it claims a partial batch.
const GATHER: Duration = Duration::from_millis(2);

/// Tasks a quick drift lane may hold per slot beyond the slots themselves. With 32 slots and
/// no-op handlers, claims of free slots alone drained ~8,000 tasks/s, holding 3 per slot
/// ~12,000, holding 7 (claims of 100) ~14,500 (docs/benchmarks.md). On a faster machine,
/// where claims of 100 drained ~21,000, holding 15 (claims of [`MAX_CLAIM_BATCH`], 200) drained
/// ~24,000; holding 31 with claims of 400 no more.
const AHEAD_PER_SLOT: usize = 15;

/// Handlers that average less than this per run are quick: a task held for one of their slots
/// waits a few of these at most.
const QUICK_RUN: Duration = Duration::from_millis(1);

/// Longest a task held ahead waits for a slot before it goes back to the queue.
const HOLD_LIMIT: Duration = Duration::from_millis(250);

/// Weight of the newest run in the lane's running average, as a power of two (1/8).
const RUN_AVERAGE_SHIFT: u32 = 3;

/// What entitles a claimed task to be held by its lane.
pub(super) enum Hold {
    /// A free slot: the task starts at once.
    Slot(OwnedSemaphorePermit),
    /// Room ahead of the slots: the task waits for a slot first.
    Ahead(OwnedSemaphorePermit),
}

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
    /// Tasks held waiting for a slot: `capacity * AHEAD_PER_SLOT` on a drift lane, none on a
    /// queue's own lane.
    ahead: Arc<Semaphore>,
    ahead_total: usize,
    /// The handlers' running average time per run, in µs; `u64::MAX` until one has run.
    mean_run_us: AtomicU64,
    /// Claims in flight at once, each by its own loop over the shared slots.
    pub claimers: usize,
    pub drift: DriftRange,
    pub queues: Option<Vec<String>>,
    pub exclude_queues: Vec<String>,
    pub timeout: Duration,
    pub wake: Notify,
    /// The lane's claim loops waiting for work after a claim found less than it asked for.
    pub idle_claimers: AtomicUsize,
    /// New ready work was announced since a claim loop of the lane last found none.
    pub work_announced: AtomicBool,
}

impl Lane {
    fn new(name: String, capacity: usize, drift: DriftRange, timeout: Duration) -> Lane {
        Lane {
            name,
            escalated: false,
            escalate_by_drift: false,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            ahead: Arc::new(Semaphore::new(capacity * AHEAD_PER_SLOT)),
            ahead_total: capacity * AHEAD_PER_SLOT,
            mean_run_us: AtomicU64::new(u64::MAX),
            claimers: claimers(capacity),
            drift,
            queues: None,
            exclude_queues: Vec::new(),
            timeout,
            wake: Notify::new(),
            idle_claimers: AtomicUsize::new(0),
            work_announced: AtomicBool::new(false),
        }
    }

    /// Whether the lane's claim takes a ready task of `queue` with `drift_score`.
    pub fn serves(&self, queue: &str, drift_score: f64) -> bool {
        self.queues
            .as_ref()
            .is_none_or(|queues| queues.iter().any(|q| q == queue))
            && !self.exclude_queues.iter().any(|q| q == queue)
            && self.drift.at_least <= drift_score
            && drift_score < self.drift.below
    }

    /// Whether one of the lane's claim loops is waiting for work: its last claim found every
    /// ready task it serves, it holds no slot, and no new ready task was announced since.
    pub fn idle(&self) -> bool {
        self.idle_claimers.load(Ordering::SeqCst) > 0 && !self.work_announced.load(Ordering::SeqCst)
    }

    /// Adds one handler run to the lane's running average.
    pub fn observe_run(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX - 1);
        let mean = self.mean_run_us.load(Ordering::Relaxed);
        let next = if mean == u64::MAX {
            took
        } else {
            mean - (mean >> RUN_AVERAGE_SHIFT) + (took >> RUN_AVERAGE_SHIFT)
        };
        self.mean_run_us.store(next, Ordering::Relaxed);
    }

    /// Whether the lane claims ahead of its free slots now.
    fn quick(&self) -> bool {
        self.ahead_total > 0
            && self.mean_run_us.load(Ordering::Relaxed) < QUICK_RUN.as_micros() as u64
    }

    /// What the lane's next claim may take: its free slots up to this claim's share of the lane
    /// (slots and room ahead divided among its claims in flight), then room ahead while the
    /// lane is quick; at least one of either (waited for: a slot, or while quick whichever
    /// frees first); None once `stop` is cancelled. Under load slots free one by one as
    /// handlers end, and a claim at the first would take one task per statement, so while
    /// others are busy a lane that is not quick gathers slots a little longer (at most
    /// [`GATHER`]) before it claims fewer than a full share. Slots come first in the answer.
    pub async fn room(&self, stop: &CancellationToken) -> Option<Vec<Hold>> {
        let quick = self.quick();
        // A quick lane also claims on room ahead, rather than queue behind its held tasks for
        // a slot.
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            permit = self.slots.clone().acquire_owned() => Hold::Slot(permit.ok()?),
            permit = self.ahead.clone().acquire_owned(), if quick => Hold::Ahead(permit.ok()?),
        };
        let (mut slots, mut ahead) = match first {
            Hold::Slot(permit) => (vec![permit], Vec::new()),
            Hold::Ahead(permit) => (Vec::new(), vec![permit]),
        };
        let held = if quick {
            self.capacity + self.ahead_total
        } else {
            self.capacity
        };
        let full = held.div_ceil(self.claimers).min(MAX_CLAIM_BATCH);
        take_free(&self.slots, &mut slots, full - ahead.len());
        let deadline = tokio::time::Instant::now() + GATHER;
        while slots.len() < full && !quick {
            tokio::select! {
                permit = self.slots.clone().acquire_owned() => match permit {
                    Ok(permit) => slots.push(permit),
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
            take_free(&self.slots, &mut slots, full);
        }
        if quick {
            take_free(&self.ahead, &mut ahead, full - slots.len());
        }
        let holds = slots.into_iter().map(Hold::Slot);
        Some(holds.chain(ahead.into_iter().map(Hold::Ahead)).collect())
    }

    /// Waits for a slot for a task held ahead: None when `stop` or `cancel` comes first, or
    /// after [`HOLD_LIMIT`], which the lane counts as a slow run.
    pub async fn slot_for_held(
        &self,
        stop: &CancellationToken,
        cancel: &CancellationToken,
    ) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            _ = stop.cancelled() => None,
            permit = self.slots.clone().acquire_owned() => permit.ok(),
            _ = tokio::time::sleep(HOLD_LIMIT) => {
                self.observe_run(HOLD_LIMIT);
                None
            }
        }
    }

    /// Makes the lane hold no task beyond its slots.
    fn hold_none_ahead(&mut self) {
        self.ahead = Arc::new(Semaphore::new(0));
        self.ahead_total = 0;
    }
}

/// Adds free permits of `semaphore` to `permits`, up to `up_to` in all.
fn take_free(semaphore: &Arc<Semaphore>, permits: &mut Vec<OwnedSemaphorePermit>, up_to: usize) {
    while permits.len() < up_to {
        match semaphore.clone().try_acquire_owned() {
            Ok(permit) => permits.push(permit),
            Err(_) => break,
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
        lane.hold_none_ahead();
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

    fn lane(capacity: usize) -> Lane {
        let mut lane = Lane::new(
            "test".into(),
            capacity,
            DriftRange::ALL,
            Duration::from_secs(60),
        );
        lane.claimers = 1;
        lane
    }

    /// How many slots and how many holds ahead, in order, a claim of `lane` would take now.
    async fn room_of(lane: &Lane) -> Vec<&'static str> {
        let holds = lane.room(&CancellationToken::new()).await.expect("room");
        holds
            .iter()
            .map(|hold| match hold {
                Hold::Slot(_) => "slot",
                Hold::Ahead(_) => "ahead",
            })
            .collect()
    }

    #[tokio::test]
    async fn a_lane_whose_handlers_have_not_run_yet_claims_only_its_free_slots() {
        assert_eq!(room_of(&lane(2)).await, ["slot", "slot"]);
    }

    #[tokio::test]
    async fn a_quick_lane_claims_its_free_slots_first_then_room_ahead() {
        let lane = lane(2);
        lane.observe_run(Duration::from_micros(20));
        let room = room_of(&lane).await;
        assert_eq!(room.len(), 2 + 2 * AHEAD_PER_SLOT);
        assert_eq!(room[..2], ["slot", "slot"]);
        assert!(room[2..].iter().all(|hold| *hold == "ahead"));
    }

    #[tokio::test]
    async fn a_quick_lane_with_every_slot_busy_still_claims_ahead() {
        let lane = lane(1);
        lane.observe_run(Duration::from_micros(20));
        let _busy = lane
            .slots
            .clone()
            .try_acquire_owned()
            .expect("the one slot");
        let room = room_of(&lane).await;
        assert_eq!(room, vec!["ahead"; AHEAD_PER_SLOT]);
    }

    #[tokio::test]
    async fn a_lane_whose_handlers_are_slow_holds_nothing_ahead() {
        let lane = lane(2);
        lane.observe_run(Duration::from_millis(40));
        assert_eq!(room_of(&lane).await, ["slot", "slot"]);
    }

    #[tokio::test]
    async fn a_queue_s_own_lane_holds_nothing_ahead_however_quick_its_handlers() {
        let settings = EngineSettings {
            queue_limits: vec![("emails".into(), 2)],
            ..EngineSettings::default()
        };
        let lanes = lanes(&settings);
        let queue_lane = &lanes[2];
        queue_lane.observe_run(Duration::from_micros(20));
        assert_eq!(room_of(queue_lane).await, ["slot", "slot"]);
    }

    #[test]
    fn the_running_average_turns_quick_again_after_quick_runs_follow_a_slow_one() {
        let lane = lane(1);
        lane.observe_run(Duration::from_micros(20));
        assert!(lane.quick());
        lane.observe_run(HOLD_LIMIT);
        assert!(!lane.quick());
        for _ in 0..40 {
            lane.observe_run(Duration::from_micros(20));
        }
        assert!(lane.quick());
    }

    #[tokio::test]
    async fn a_held_task_gets_the_slot_that_frees_and_gives_up_after_the_hold_limit() {
        let lane = lane(1);
        lane.observe_run(Duration::from_micros(20));
        let (stop, cancel) = (CancellationToken::new(), CancellationToken::new());
        let busy = lane
            .slots
            .clone()
            .try_acquire_owned()
            .expect("the one slot");
        let frees_later = async {
            tokio::time::sleep(HOLD_LIMIT / 2).await;
            drop(busy);
        };
        let (got, ()) = tokio::join!(lane.slot_for_held(&stop, &cancel), frees_later);
        assert!(got.is_some());
        drop(got);

        let _busy = lane
            .slots
            .clone()
            .try_acquire_owned()
            .expect("the one slot");
        assert!(lane.slot_for_held(&stop, &cancel).await.is_none());
        assert!(!lane.quick(), "the wait counts as a slow run");
    }

    #[tokio::test]
    async fn a_held_task_stops_waiting_when_the_process_stops_claiming() {
        let lane = lane(1);
        let _busy = lane
            .slots
            .clone()
            .try_acquire_owned()
            .expect("the one slot");
        let (stop, cancel) = (CancellationToken::new(), CancellationToken::new());
        stop.cancel();
        assert!(lane.slot_for_held(&stop, &cancel).await.is_none());
        assert_eq!(
            lane.mean_run_us.load(Ordering::Relaxed),
            u64::MAX,
            "no run was counted"
        );
    }
}
