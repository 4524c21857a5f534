//! The retry policy: exponential backoff with jitter, capped.
//!
//! The delay before attempt `n + 1` is `base * 2^(n-1)`, capped at `max`, of which a random
//! half is taken off ("equal jitter"), so that tasks that failed together do not all come
//! back at the same instant, yet none waits less than half its nominal delay.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;

use crate::{model::Task, store::Outcome};

/// How long a task waits before its next attempt after a retryable failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The nominal delay after the first failed attempt.
    pub base: Duration,
    /// The cap on the nominal delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The nominal delay after `attempt` (1-based) failed, before jitter.
    pub fn nominal_delay(&self, attempt: i32) -> Duration {
        let exponent = attempt.clamp(1, 64) as u32 - 1;
        let factor = 2f64.powi(exponent as i32);
        let delay = self.base.as_secs_f64() * factor;
        Duration::from_secs_f64(delay.min(self.max.as_secs_f64()))
    }

    /// The delay to wait after `attempt` failed: between half the nominal delay and all of it.
    pub fn delay(&self, attempt: i32) -> Duration {
        let nominal = self.nominal_delay(attempt);
        let half = nominal / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }

    /// How a retryable failure of the task's current attempt ends: a retry after this policy's
    /// delay (or after `wait`, when the worker asked for one) while attempts are left, else a
    /// final failure. Every kind of worker ends its attempts through this one rule.
    pub fn after_failure(&self, task: &Task, error: String, wait: Option<Duration>) -> Outcome {
        if !crate::model::transition::attempts_left(task.attempts, task.max_attempts) {
            return Outcome::Failed(error);
        }
        let delay = wait.unwrap_or_else(|| self.delay(task.attempts));
        let run_at =
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        Outcome::Retry { error, run_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    #[test]
    fn the_nominal_delay_doubles_each_attempt_up_to_the_cap() {
        let delays: Vec<u64> = (1..=8).map(|a| POLICY.nominal_delay(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn jittered_delays_stay_between_half_and_all_of_the_nominal_delay() {
        for attempt in 1..=10 {
            let nominal = POLICY.nominal_delay(attempt);
            for _ in 0..50 {
                let delay = POLICY.delay(attempt);
                assert!(
                    delay >= nominal / 2 && delay <= nominal,
                    "{delay:?} vs {nominal:?}"
                );
            }
        }
    }

    #[test]
    fn absurd_attempt_numbers_do_not_overflow() {
        assert_eq!(POLICY.nominal_delay(i32::MAX), Duration::from_secs(60));
        assert_eq!(POLICY.nominal_delay(0), Duration::from_secs(1));
    }
}
