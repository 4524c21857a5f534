//! Starting a task at its creation: the engine's side of [`LocalStarter`].
//!
//! When this process serves the API and runs workers, a ready task it creates need not wait
//! for a claim: if a lane that would claim it is waiting for work (its last claim found every
//! ready task) and has a slot free, the store writes the task as claimed by this worker,
//! unless a ready task of its queue would be claimed first (the statement checks), and the
//! lane runs it in that slot. The task skips the claim statement, its queued row version and
//! the wake-up; its trail still reads `created`, `claimed`. A busy lane is left alone: its
//! claims hold its free slots, and under load a queue is rarely empty at a create anyway.
//!
//! Invariants: a slot is taken before the insert is sent and is either handed to the started
//! task or freed when the reservation drops; a slot is only free when no task the lane holds
//! waits for one (the semaphore serves waiters first); the lease's deadline on this process's
//! clock is taken before the insert, as a claim's is before its statement; once shutdown
//! began, no slot is given.

use std::{
    sync::{Arc, Weak},
    time::Instant,
};

use super::{Inner, fence, lanes::Hold};
use crate::store::{LocalStarter, StartSlot};

/// Offers `inner`'s lanes to its store for tasks at their creation, unless the settings say
/// not to; the returned offer must live as long as the engine runs (the store holds it
/// weakly).
pub(super) fn offer(inner: &Arc<Inner>) -> Option<Arc<dyn LocalStarter>> {
    if !inner.settings.start_at_creation {
        return None;
    }
    let starter: Arc<dyn LocalStarter> = Arc::new(StartsAtCreation(Arc::downgrade(inner)));
    inner.store.start_here(Arc::downgrade(&starter));
    Some(starter)
}

struct StartsAtCreation(Weak<Inner>);

impl LocalStarter for StartsAtCreation {
    fn reserve(&self, queue: &str, drift_score: f64) -> Option<StartSlot> {
        let inner = self.0.upgrade()?;
        if inner.stop_claiming.is_cancelled() {
            return None;
        }
        let (lane_index, permit) = inner
            .lanes
            .iter()
            .enumerate()
            .filter(|(_, lane)| lane.idle() && lane.serves(queue, drift_score))
            .find_map(|(i, lane)| Some((i, lane.slots.clone().try_acquire_owned().ok()?)))?;
        let lease = inner.settings.lease;
        let held_until = fence::held_until(Instant::now(), lease);
        let worker_id = inner.worker_id.clone();
        Some(StartSlot::new(worker_id, lease, move |claimed| {
            let task = &claimed.task;
            crate::metrics::task_started_at_creation(&task.queue, &task.task_type);
            inner.start(lane_index, claimed, Hold::Slot(permit), held_until);
        }))
    }
}
