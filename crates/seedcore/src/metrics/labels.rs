//! The label sets of every metric family, and the cap on how many distinct values a label
//! coming from clients (queue, task type, schedule name) may take in one process.
//!
//! Every series a process creates stays in its memory and in every scrape until it exits, so
//! a label whose values clients choose is capped: the first [`MAX_DISTINCT`] values seen are
//! kept as they are, later ones are counted under [`OTHER`]. Queues, types and schedules are
//! few in practice; the cap only stops a client (or a bug) sending a fresh type per task from
//! growing the process and its scrapes without bound. Task ids, tokens and raw paths are
//! never labels.

use std::{borrow::Cow, collections::HashSet, sync::RwLock};

use prometheus_client::encoding::EncodeLabelSet;

/// Most distinct values kept per capped label in one process.
pub const MAX_DISTINCT: usize = 500;
/// The value that stands for every value past the cap.
pub const OTHER: &str = "other";
/// The route of a request that matched no route (never its raw path).
pub const UNMATCHED: &str = "unmatched";

/// The values a capped label has taken so far.
#[derive(Debug, Default)]
pub struct Capped {
    seen: RwLock<HashSet<String>>,
}

impl Capped {
    /// `value` when it was seen before or there is room for it, else [`OTHER`].
    pub fn label(&self, value: &str) -> String {
        if self.seen.read().expect("label set").contains(value) {
            return value.to_owned();
        }
        let mut seen = self.seen.write().expect("label set");
        if seen.len() < MAX_DISTINCT || seen.contains(value) {
            seen.insert(value.to_owned());
            value.to_owned()
        } else {
            OTHER.to_owned()
        }
    }

    /// Every value kept so far.
    pub fn values(&self) -> Vec<String> {
        self.seen
            .read()
            .expect("label set")
            .iter()
            .cloned()
            .collect()
    }
}

/// A task's queue and type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub queue: String,
    pub r#type: String,
}

/// A task's queue and type, and how one of its attempts ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub queue: String,
    pub r#type: String,
    pub outcome: &'static str,
}

/// A cron schedule, by name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabels {
    pub schedule: String,
}

/// An HTTP request's method, route template and response status. Borrowed when the values
/// are the route table's (nearly always), so counting a request copies no text.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: Cow<'static, str>,
    pub route: Cow<'static, str>,
    pub status: u16,
}

/// An HTTP request's method and route template.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: Cow<'static, str>,
    pub route: Cow<'static, str>,
}

/// A queue and a task status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueStatusLabels {
    pub queue: String,
    pub status: &'static str,
}

/// A queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

/// A worker process state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerStateLabels {
    pub state: &'static str,
}

/// A database connection pool of this process.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_cap_are_counted_as_other() {
        let capped = Capped::default();
        for i in 0..MAX_DISTINCT {
            assert_eq!(capped.label(&format!("type-{i}")), format!("type-{i}"));
        }
        assert_eq!(capped.label("one-too-many"), OTHER);
        assert_eq!(capped.label("type-7"), "type-7");
        assert_eq!(capped.values().len(), MAX_DISTINCT);
    }
}
