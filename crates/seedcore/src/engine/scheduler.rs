//! The scheduler: turns due cron schedules into tasks.
//!
//! Every process with workers runs one. None is elected: exactly one task per fire time comes
//! from the store (a due schedule is locked by one process at a time, its fire keys are unique,
//! and its next fire time moves on in the same transaction), so the loop here only decides when
//! to look. It looks at the earliest next fire time, and at least every [`MAX_PAUSE`], so that a
//! schedule created or changed through another process is seen within a second.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{DynStore, FIRE_BATCH, Firing};

/// The longest wait between two looks at the schedules.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// The shortest wait when nothing was left due, so that schedules another process is firing
/// right now (skipped, being locked) are not polled in a tight loop.
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// Fires due schedules until `stop` is cancelled.
pub(super) async fn run(store: DynStore, stop: CancellationToken) {
    loop {
        let pause = match store.fire_due_schedules(FIRE_BATCH).await {
            Ok(firing) => {
                report(&firing);
                crate::metrics::fires::count(&store, &firing.tasks).await;
                pause_after(&firing)
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot fire due schedules; trying again shortly");
                MAX_PAUSE
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn report(firing: &Firing) {
    if !firing.tasks.is_empty() {
        tracing::debug!(
            tasks = firing.tasks.len(),
            schedules = firing.schedules,
            "scheduled tasks created"
        );
    }
    for missed in &firing.missed {
        tracing::warn!(
            schedule = %missed.name,
            first = %missed.missed.first,
            last = %missed.missed.last,
            ran_once = missed.ran_once,
            "schedule missed fires while the service was down"
        );
    }
}

/// How long to wait before the next look: none when the batch was full (more may be due), else
/// until the earliest next fire, within [`MIN_PAUSE`] and [`MAX_PAUSE`].
fn pause_after(firing: &Firing) -> Duration {
    if firing.schedules as i64 >= FIRE_BATCH {
        return Duration::ZERO;
    }
    let until_due = firing.next_due.map_or(MAX_PAUSE, |due| {
        (due - firing.now).to_std().unwrap_or_default()
    });
    until_due.clamp(MIN_PAUSE, MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta};

    use super::*;

    fn firing(schedules: usize, next_in: Option<TimeDelta>) -> Firing {
        let now = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .to_utc();
        Firing {
            now,
            schedules,
            next_due: next_in.map(|d| now + d),
            ..Firing::default()
        }
    }

    #[test]
    fn the_scheduler_waits_for_the_next_fire_but_never_longer_than_a_second() {
        let soon = firing(1, Some(TimeDelta::milliseconds(300)));
        assert_eq!(pause_after(&soon), Duration::from_millis(300));
        let tomorrow = firing(0, Some(TimeDelta::days(1)));
        assert_eq!(pause_after(&tomorrow), MAX_PAUSE);
        assert_eq!(pause_after(&firing(0, None)), MAX_PAUSE);
    }

    #[test]
    fn a_full_batch_looks_again_at_once_and_an_overdue_one_not_in_a_tight_loop() {
        assert_eq!(
            pause_after(&firing(FIRE_BATCH as usize, Some(TimeDelta::zero()))),
            Duration::ZERO
        );
        let held_elsewhere = firing(0, Some(TimeDelta::seconds(-2)));
        assert_eq!(pause_after(&held_elsewhere), MIN_PAUSE);
    }
}
