//! Task statistics over time, the plan both backends answer: which buckets a window of the
//! last `minutes` is cut into, and the buckets assembled from the rows a backend counted.
//!
//! Invariants:
//! - buckets are aligned to multiples of their size since the Unix epoch, so two reads a
//!   second apart agree on every bucket but the last; the last one holds `until` (now) and is
//!   partial;
//! - there are at most [`MAX_BUCKETS`] of them: the size is the smallest of [`BUCKET_SIZES`]
//!   that covers the window in that many;
//! - a task is counted once, in the bucket its `finished_at` falls in (half-open: a task that
//!   finished exactly at a bucket's start belongs to it);
//! - run time is `finished_at - started_at` of completed and failed tasks that started; waiting
//!   time is `started_at - run_at` of every finished task that started, never below zero;
//!   percentiles interpolate linearly between the two nearest values, as PostgreSQL's
//!   `percentile_cont` does.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Most buckets a window is cut into.
pub const MAX_BUCKETS: i64 = 120;
/// The bucket sizes a window may use, in seconds, smallest first.
pub const BUCKET_SIZES: [i64; 7] = [60, 120, 300, 600, 900, 1800, 3600];

/// What to count: tasks that finished in the last `minutes`, optionally of one queue or type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsQuery {
    /// How far back the window reaches, 1 to 1440.
    pub minutes: i64,
    /// Only tasks of this queue.
    pub queue: Option<String>,
    /// Only tasks of this type.
    pub task_type: Option<String>,
}

/// The buckets a query reads, fixed from the clock once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsWindow {
    /// The start of the first bucket.
    pub since: DateTime<Utc>,
    /// Now: inside the last bucket.
    pub until: DateTime<Utc>,
    /// How long each bucket lasts.
    pub bucket_seconds: i64,
    /// How many buckets there are.
    pub buckets: i64,
}

impl StatsWindow {
    /// The window of the last `minutes` as of `now`.
    pub fn of(minutes: i64, now: DateTime<Utc>) -> StatsWindow {
        let span = minutes * 60;
        let size = BUCKET_SIZES
            .into_iter()
            .find(|size| span <= MAX_BUCKETS * size)
            .unwrap_or(BUCKET_SIZES[BUCKET_SIZES.len() - 1]);
        let buckets = (span + size - 1) / size;
        let last = now.timestamp().div_euclid(size) * size;
        let first = last - (buckets - 1) * size;
        StatsWindow {
            since: DateTime::from_timestamp(first, 0).expect("a time near now"),
            until: now,
            bucket_seconds: size,
            buckets,
        }
    }

    /// Where the last bucket ends: nothing finished after it is read.
    pub fn end(&self) -> DateTime<Utc> {
        self.start_of(self.buckets)
    }

    /// The start of bucket `n` (0 is the first).
    pub fn start_of(&self, n: i64) -> DateTime<Utc> {
        self.since + TimeDelta::seconds(n * self.bucket_seconds)
    }
}

/// Two percentiles of a duration, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, ToSchema)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// 95 in 100 took at most this long.
    pub p95: f64,
}

impl Percentiles {
    /// Both percentiles, when both are known (a bucket without such tasks has neither).
    pub fn of(p50: Option<f64>, p95: Option<f64>) -> Option<Percentiles> {
        Some(Percentiles {
            p50: p50?,
            p95: p95?,
        })
    }
}

/// The tasks that finished within one bucket.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct StatsBucket {
    /// Where the bucket starts; it lasts `bucket_seconds`.
    pub start: DateTime<Utc>,
    /// Tasks that completed.
    pub completed: i64,
    /// Tasks that failed for good (a retry is not counted).
    pub failed: i64,
    /// Tasks that were cancelled.
    pub cancelled: i64,
    /// Run time (`finished_at - started_at`) of the completed and failed tasks that started;
    /// null when there were none.
    pub run_ms: Option<Percentiles>,
    /// Waiting time (`started_at - run_at`, how long a task waited once it could be claimed,
    /// at least 0) of the finished tasks that started; null when there were none.
    pub wait_ms: Option<Percentiles>,
}

/// Finished tasks per bucket over a window, every bucket present, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TaskStats {
    /// The start of the first bucket.
    pub since: DateTime<Utc>,
    /// When the statistics were read; inside the last bucket, which is partial.
    pub until: DateTime<Utc>,
    /// How long each bucket lasts: 60 for windows up to 120 minutes, then the smallest of
    /// 120, 300, 600, 900, 1800 and 3600 that keeps the buckets at 120 or fewer.
    pub bucket_seconds: i64,
    /// Every bucket of the window, oldest first; empty ones hold zeros.
    pub buckets: Vec<StatsBucket>,
}

/// One bucket as a backend counted it: `n` is its place (0 is the first).
#[derive(Clone, Debug, PartialEq)]
pub struct CountedBucket {
    /// The bucket's place, 0 for the first.
    pub n: i64,
    /// As in [`StatsBucket`].
    pub completed: i64,
    /// As in [`StatsBucket`].
    pub failed: i64,
    /// As in [`StatsBucket`].
    pub cancelled: i64,
    /// As in [`StatsBucket`].
    pub run_ms: Option<Percentiles>,
    /// As in [`StatsBucket`].
    pub wait_ms: Option<Percentiles>,
}

/// A bucket as both backends' statements answer it: place, completed, failed, cancelled, then
/// run p50 and p95 and wait p50 and p95 in milliseconds (null when the bucket ran nothing).
pub type CountedRow = (
    i64,
    i64,
    i64,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

impl From<CountedRow> for CountedBucket {
    fn from(row: CountedRow) -> CountedBucket {
        let (n, completed, failed, cancelled, run_p50, run_p95, wait_p50, wait_p95) = row;
        CountedBucket {
            n,
            completed,
            failed,
            cancelled,
            run_ms: Percentiles::of(run_p50, run_p95),
            wait_ms: Percentiles::of(wait_p50, wait_p95),
        }
    }
}

/// Every bucket of the window, those the backend did not count as zero.
pub fn assemble(window: &StatsWindow, counted: Vec<CountedBucket>) -> TaskStats {
    let mut buckets: Vec<StatsBucket> = (0..window.buckets)
        .map(|n| StatsBucket {
            start: window.start_of(n),
            completed: 0,
            failed: 0,
            cancelled: 0,
            run_ms: None,
            wait_ms: None,
        })
        .collect();
    for row in counted {
        let Some(bucket) = usize::try_from(row.n).ok().and_then(|n| buckets.get_mut(n)) else {
            continue;
        };
        bucket.completed = row.completed;
        bucket.failed = row.failed;
        bucket.cancelled = row.cancelled;
        bucket.run_ms = row.run_ms;
        bucket.wait_ms = row.wait_ms;
    }
    TaskStats {
        since: window.since,
        until: window.until,
        bucket_seconds: window.bucket_seconds,
        buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn an_hour_is_sixty_minute_buckets_the_last_holding_now() {
        let window = StatsWindow::of(60, at("2026-12-06T10:30:15Z"));
        assert_eq!(window.bucket_seconds, 60);
        assert_eq!(window.buckets, 60);
        assert_eq!(window.since, at("2026-12-06T09:31:00Z"));
        assert_eq!(window.start_of(59), at("2026-12-06T10:30:00Z"));
        assert_eq!(window.end(), at("2026-12-06T10:31:00Z"));
    }

    #[test]
    fn longer_windows_take_the_smallest_round_size_that_keeps_120_buckets() {
        let now = at("2026-12-06T10:30:15Z");
        let sizes: Vec<(i64, i64)> = [1, 120, 121, 240, 241, 600, 601, 1200, 1201, 1440]
            .into_iter()
            .map(|minutes| {
                let w = StatsWindow::of(minutes, now);
                (w.bucket_seconds, w.buckets)
            })
            .collect();
        assert_eq!(
            sizes,
            [
                (60, 1),
                (60, 120),
                (120, 61),
                (120, 120),
                (300, 49),
                (300, 120),
                (600, 61),
                (600, 120),
                (900, 81),
                (900, 96)
            ]
        );
    }

    #[test]
    fn buckets_nobody_counted_are_zero_and_strays_are_dropped() {
        let window = StatsWindow::of(3, at("2026-12-06T10:30:15Z"));
        let counted = |n| CountedBucket {
            n,
            completed: 2,
            failed: 1,
            cancelled: 0,
            run_ms: Percentiles::of(Some(10.0), Some(20.0)),
            wait_ms: None,
        };
        let stats = assemble(&window, vec![counted(1), counted(7), counted(-1)]);
        let completed: Vec<i64> = stats.buckets.iter().map(|b| b.completed).collect();
        assert_eq!(completed, [0, 2, 0]);
        assert_eq!(stats.buckets[0].run_ms, None);
        assert_eq!(stats.buckets[1].run_ms.unwrap().p95, 20.0);
    }
}
