//! One scrape: the gauges read from the store now, beside this process's counted families,
//! in the Prometheus text format.
//!
//! Every gauge is read from what the store keeps small on purpose: the per-queue counters
//! (never a count over the tasks table on PostgreSQL), the ready set's index, the workers and
//! schedules tables, the pools. Every known queue gets a series for every status, zeros
//! included, so an empty queue shows 0 rather than nothing; "known" is every queue the store
//! has tasks in or a pause switch for, every queue this process counted something in, and
//! `default`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use prometheus_client::{
    encoding::prometheus_text,
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};

use super::labels::{
    MAX_DISTINCT, PoolLabels, QueueLabels, QueueStatusLabels, ScheduleLabels, WorkerStateLabels,
};
use crate::model::{QueueInfo, TaskStatus, WorkerState, task::DEFAULT_QUEUE};
use crate::store::{DynStore, StoreResult};

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The whole text of a scrape of `store` and this process's counts.
pub async fn render(store: &DynStore) -> StoreResult<String> {
    let mut registry = Registry::default();
    super::global().register(&mut registry);
    let now = Utc::now();
    // One after another: a scrape holds one pooled connection at a time, however busy the
    // pool is with requests and workers.
    let queues = store.list_queues().await?;
    let workers = store.list_workers().await?;
    let schedules = store.list_schedules(MAX_DISTINCT as i64, 0).await?;
    let known: Vec<String> = known_queues(&queues).into_iter().collect();
    let oldest = store.oldest_ready(&known).await?;
    register_queues(&mut registry, &known, &queues, &oldest, now);
    let states = workers.iter().map(|w| w.state(now));
    register_workers(&mut registry, states);
    let fires = schedules
        .items
        .iter()
        .map(|s| (s.name.clone(), s.last_fire_at));
    register_schedules(&mut registry, fires);
    register_pools(&mut registry, store);
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry).expect("writing to a String cannot fail");
    Ok(text)
}

/// Tasks per queue and status, the oldest ready task's age and the pause switch, per queue.
fn register_queues(
    registry: &mut Registry,
    known: &[String],
    queues: &[QueueInfo],
    oldest: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
) {
    let by_name: BTreeMap<&str, &QueueInfo> = queues.iter().map(|q| (q.name.as_str(), q)).collect();
    let tasks = Family::<QueueStatusLabels, Gauge>::default();
    let paused = Family::<QueueLabels, Gauge>::default();
    let age = Family::<QueueLabels, FloatGauge>::default();
    for queue in known {
        let info = by_name.get(queue.as_str());
        for status in TaskStatus::ALL {
            let count = info.and_then(|q| q.counts.get(status.as_str())).copied();
            let labels = QueueStatusLabels {
                queue: queue.clone(),
                status: status.as_str(),
            };
            tasks.get_or_create(&labels).set(count.unwrap_or(0));
        }
        let labels = QueueLabels {
            queue: queue.clone(),
        };
        paused
            .get_or_create(&labels)
            .set(info.is_some_and(|q| q.paused).into());
        age.get_or_create(&labels).set(0.0);
    }
    for (queue, due) in oldest {
        let waited = (now - *due).as_seconds_f64().max(0.0);
        let labels = QueueLabels {
            queue: queue.clone(),
        };
        age.get_or_create(&labels).set(waited);
    }
    registry.register(
        "seedcore_tasks",
        "Tasks per queue and status, as the store counts them now (every process reports the \
         same)",
        tasks,
    );
    registry.register(
        "seedcore_queue_oldest_ready_age_seconds",
        "Seconds since the oldest ready (queued or retry, due) task of the queue became due; 0 \
         when none is ready",
        age,
    );
    registry.register(
        "seedcore_queue_paused",
        "1 when the queue is paused, else 0",
        paused,
    );
}

/// Every queue to report, in name order (see the module docs).
fn known_queues(queues: &[QueueInfo]) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = queues.iter().map(|q| q.name.clone()).collect();
    known.extend(super::global().queues_seen());
    known.insert(DEFAULT_QUEUE.to_owned());
    known
}

/// Registered worker processes per state, every state present.
fn register_workers(registry: &mut Registry, states: impl Iterator<Item = WorkerState>) {
    let workers = Family::<WorkerStateLabels, Gauge>::default();
    for state in [WorkerState::Active, WorkerState::Stopped, WorkerState::Lost] {
        workers.get_or_create(&worker_labels(state)).set(0);
    }
    for state in states {
        workers.get_or_create(&worker_labels(state)).inc();
    }
    registry.register(
        "seedcore_workers",
        "Worker processes registered in the store, by state (active, stopped, lost)",
        workers,
    );
}

fn worker_labels(state: WorkerState) -> WorkerStateLabels {
    let state = match state {
        WorkerState::Active => "active",
        WorkerState::Stopped => "stopped",
        WorkerState::Lost => "lost",
    };
    WorkerStateLabels { state }
}

/// The last fire of each schedule, in seconds since the Unix epoch (0: never fired).
fn register_schedules(
    registry: &mut Registry,
    fires: impl Iterator<Item = (String, Option<DateTime<Utc>>)>,
) {
    let last = Family::<ScheduleLabels, FloatGauge>::default();
    for (schedule, at) in fires {
        let seconds = at.map_or(0.0, |at| at.timestamp_micros() as f64 / 1e6);
        last.get_or_create(&ScheduleLabels { schedule })
            .set(seconds);
    }
    registry.register(
        "seedcore_schedule_last_fire_timestamp_seconds",
        "When each schedule last fired, in seconds since the Unix epoch; 0 when it never did",
        last,
    );
}

/// This process's connection pools: open, in use, idle, and the most it opens.
fn register_pools(registry: &mut Registry, store: &DynStore) {
    let size = Family::<PoolLabels, Gauge>::default();
    let in_use = Family::<PoolLabels, Gauge>::default();
    let idle = Family::<PoolLabels, Gauge>::default();
    let max = Family::<PoolLabels, Gauge>::default();
    for pool in store.pool_stats() {
        let labels = PoolLabels { pool: pool.name };
        size.get_or_create(&labels).set(pool.size.into());
        idle.get_or_create(&labels).set(pool.idle.into());
        let busy = pool.size.saturating_sub(pool.idle);
        in_use.get_or_create(&labels).set(busy.into());
        max.get_or_create(&labels).set(pool.max.into());
    }
    registry.register(
        "seedcore_db_pool_connections",
        "Database connections this process has open, idle or in use",
        size,
    );
    registry.register(
        "seedcore_db_pool_in_use",
        "Database connections of this process running a statement or transaction",
        in_use,
    );
    registry.register(
        "seedcore_db_pool_idle",
        "Open database connections of this process waiting for work",
        idle,
    );
    registry.register(
        "seedcore_db_pool_max_connections",
        "Most database connections the pool opens",
        max,
    );
}
