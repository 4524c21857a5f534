//! Self-fencing: how long this process may go on running a task whose lease it cannot renew.
//!
//! A lease is known to be held up to a local deadline on this process's monotonic clock: the
//! moment the claim (or the last successful renewal) was *sent*, plus the lease. The store
//! counts the lease from when it ran the statement, which is never earlier, so the local
//! deadline never outlives the store's. A process cut off from its database cannot renew; once a
//! task's deadline is within [`margin`] of now its handler is stopped and its result dropped,
//! before the store can hand the task to another process — so the same task never runs twice
//! at once, however long the cut lasts.
//!
//! The arithmetic is here, free of clocks and locks, so it can be checked on its own; the
//! engine applies it to the tasks it runs.

use std::time::{Duration, Instant};

/// How long before a lease's local deadline its handler is stopped: a sixth of the lease,
/// which leaves the rescue elsewhere (at the deadline at the earliest) time to find the handler
/// already gone, and two renewal attempts (every third of the lease) before it bites.
pub fn margin(lease: Duration) -> Duration {
    lease / 6
}

/// The local deadline of a lease claimed or renewed by a statement sent at `sent`.
pub fn held_until(sent: Instant, lease: Duration) -> Instant {
    sent + lease
}

/// Whether a task held until `held_until` must be stopped at `now`.
pub fn expired(held_until: Instant, now: Instant, margin: Duration) -> bool {
    now + margin >= held_until
}

/// When to look again at tasks held until the given deadlines: as the first of them comes
/// within `margin`, and at most `margin` from `now` (a task claimed meanwhile holds its lease
/// for longer than that).
pub fn next_check(
    deadlines: impl IntoIterator<Item = Instant>,
    now: Instant,
    margin: Duration,
) -> Instant {
    deadlines
        .into_iter()
        .map(|held_until| held_until.checked_sub(margin).unwrap_or(now))
        .fold(now + margin, Instant::min)
        .max(now)
}

/// How long a claim or a renewal may take before it counts as failed: a third of the lease,
/// the time between heartbeats. A renewal that answers later would still be right (its
/// deadline counts from when it was sent), but a heartbeat that waits for it cannot retry
/// meanwhile; a claim that answers later would hand out tasks with little of their lease left.
/// Over a silent network cut a statement gets no answer at all, and only this ends it. A claim
/// given up on after the store ran it leaves its tasks to the rescue, like a crashed worker's.
pub fn statement_timeout(lease: Duration) -> Duration {
    lease / 3
}

/// How soon a failed renewal is tried again: a quarter of the heartbeat interval, so that a
/// brief failure is retried before [`margin`] stops any task, without hammering a database
/// that is down.
pub fn renewal_retry(lease: Duration) -> Duration {
    lease / 12
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn a_lease_is_held_for_its_length_from_when_its_statement_was_sent() {
        let sent = Instant::now();
        assert_eq!(held_until(sent, LEASE), sent + LEASE);
    }

    #[test]
    fn a_task_is_stopped_once_its_deadline_is_within_the_margin() {
        let sent = Instant::now();
        let deadline = held_until(sent, LEASE);
        let margin = margin(LEASE);
        assert_eq!(margin, Duration::from_secs(5));
        let just_before = sent + Duration::from_secs(25) - Duration::from_millis(1);
        assert!(!expired(deadline, just_before, margin));
        assert!(expired(deadline, sent + Duration::from_secs(25), margin));
        assert!(expired(deadline, sent + Duration::from_secs(40), margin));
    }

    #[test]
    fn two_failed_heartbeats_pass_before_a_task_is_stopped() {
        // Renewed at 0; the heartbeats at a third and two thirds of the lease fail.
        let sent = Instant::now();
        let deadline = held_until(sent, LEASE);
        let margin = margin(LEASE);
        assert!(!expired(deadline, sent + LEASE / 3, margin));
        assert!(!expired(deadline, sent + LEASE * 2 / 3, margin));
        assert!(expired(deadline, sent + LEASE * 5 / 6, margin));
    }

    #[test]
    fn a_renewal_that_times_out_is_retried_before_any_task_is_stopped() {
        let sent = Instant::now();
        let deadline = held_until(sent, LEASE);
        let retried = sent + LEASE / 3 + statement_timeout(LEASE) + renewal_retry(LEASE);
        assert!(!expired(deadline, retried, margin(LEASE)));
    }

    #[test]
    fn the_next_check_is_when_the_first_deadline_comes_within_the_margin() {
        let now = Instant::now();
        let margin = margin(LEASE);
        let soon = now + Duration::from_secs(7);
        let later = now + Duration::from_secs(20);
        assert_eq!(
            next_check([later, soon], now, margin),
            now + Duration::from_secs(2)
        );
    }

    #[test]
    fn with_no_deadline_near_the_next_check_is_one_margin_away() {
        let now = Instant::now();
        let margin = margin(LEASE);
        assert_eq!(next_check([], now, margin), now + margin);
        assert_eq!(next_check([now + LEASE], now, margin), now + margin);
    }

    #[test]
    fn a_deadline_already_past_is_checked_at_once() {
        let now = Instant::now();
        let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        assert_eq!(next_check([past], now, margin(LEASE)), now);
    }
}
