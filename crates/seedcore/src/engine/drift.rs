//! The optional drift detector of a worker process: a one-sided CUSUM over the drift scores of
//! the tasks it runs, as the original service kept. `S = max(0, S + drift - slack)`; when `S`
//! exceeds `limit` the task at hand is escalated and `S` starts again from zero, so a sustained
//! rise in drift escalates every few tasks rather than all of them at once.
//!
//! It complements the fixed threshold: a task at or above the threshold always takes the
//! escalated lane; the detector also escalates tasks below it when drift keeps creeping up.

use std::sync::Mutex;

/// CUSUM parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CusumSettings {
    /// Drift a task may carry without adding to the sum.
    pub slack: f64,
    /// Sum above which a task is escalated.
    pub limit: f64,
}

impl Default for CusumSettings {
    fn default() -> Self {
        CusumSettings {
            slack: 0.1,
            limit: 5.0,
        }
    }
}

/// The running sum, shared by the workers of one process.
#[derive(Debug)]
pub struct Cusum {
    settings: CusumSettings,
    sum: Mutex<f64>,
}

impl Cusum {
    /// A detector whose sum starts at zero.
    pub fn new(settings: CusumSettings) -> Cusum {
        Cusum {
            settings,
            sum: Mutex::new(0.0),
        }
    }

    /// Adds a task's drift; true when this task should be escalated.
    pub fn observe(&self, drift: f64) -> bool {
        let mut sum = self.sum.lock().expect("cusum");
        *sum = (*sum + drift - self.settings.slack).max(0.0);
        if *sum > self.settings.limit {
            *sum = 0.0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_below_the_slack_never_escalates() {
        let cusum = Cusum::new(CusumSettings::default());
        assert!((0..1000).all(|_| !cusum.observe(0.1)));
    }

    #[test]
    fn sustained_drift_escalates_once_the_sum_passes_the_limit_then_starts_over() {
        let cusum = Cusum::new(CusumSettings::default());
        // Each task adds 0.4 - 0.1 = 0.3: the 17th passes 5.0.
        let escalated: Vec<usize> = (1..=40).filter(|_| cusum.observe(0.4)).collect();
        assert_eq!(escalated, vec![17, 34]);
    }

    #[test]
    fn a_quiet_spell_drains_the_sum() {
        let cusum = Cusum::new(CusumSettings::default());
        (0..10).for_each(|_| {
            cusum.observe(0.4);
        });
        (0..40).for_each(|_| {
            cusum.observe(0.0);
        });
        assert!((0..16).all(|_| !cusum.observe(0.4)));
    }
}
