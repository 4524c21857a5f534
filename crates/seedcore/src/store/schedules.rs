//! What both backends share for cron schedules: the report of a firing, the plan of one firing
//! (which tasks to insert, how each schedule moves on), and the error for a name in use.
//!
//! Exactly once per fire time comes from three things a backend does in one transaction: lock
//! the due schedules (so no two processes plan the same schedule at once), insert the planned
//! tasks with their fire keys (`on conflict do nothing`: a key already used creates nothing),
//! and advance `next_fire_at` past the planned fires.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::model::{
    Actor, NewTask, Schedule, Task,
    schedule::{FirePlan, Missed, fire_key},
};

/// Most due schedules one firing takes; the scheduler calls again at once when it took as many.
pub const FIRE_BATCH: i64 = 100;

/// What one call of [`super::Store::fire_due_schedules`] did.
#[derive(Clone, Debug, Default)]
pub struct Firing {
    /// The time the store planned with: the database's clock on PostgreSQL, so that processes
    /// on machines whose clocks differ agree on what is due.
    pub now: DateTime<Utc>,
    /// Due schedules handled. As many as the limit means more may be due.
    pub schedules: usize,
    /// The tasks created.
    pub tasks: Vec<Task>,
    /// The schedules that had missed fires, and what they missed.
    pub missed: Vec<MissedFires>,
    /// The earliest next fire of any enabled schedule after this call.
    pub next_due: Option<DateTime<Utc>>,
}

/// Fires of one schedule that were missed (the service was down longer than the grace).
#[derive(Clone, Debug, PartialEq)]
pub struct MissedFires {
    /// The schedule.
    pub schedule_id: Uuid,
    /// The schedule's name, for logs.
    pub name: String,
    /// The missed fire times.
    pub missed: Missed,
    /// Whether one task was created for them (`run_once`) or none (`skip`).
    pub ran_once: bool,
}

/// How one due schedule moves on.
pub(super) struct Advance {
    /// The schedule.
    pub id: Uuid,
    /// Its next fire time.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The latest fire time planned now, if any.
    pub last_fire_at: Option<DateTime<Utc>>,
    /// The key of that fire's task: the store looks up its id once the tasks are inserted.
    pub last_key: Option<String>,
}

/// The plan for a batch of due schedules.
#[derive(Default)]
pub(super) struct BatchPlan {
    /// The tasks to insert, each with its fire key.
    pub tasks: Vec<NewTask>,
    /// One per schedule.
    pub advances: Vec<Advance>,
    /// The schedules that had missed fires.
    pub missed: Vec<MissedFires>,
}

/// Plans every due schedule at `now`. A schedule whose stored expression no longer parses (a
/// hand-edited row) fires nothing and stops: its next fire time becomes null.
pub(super) fn plan_batch(schedules: &[Schedule], now: DateTime<Utc>) -> BatchPlan {
    let mut batch = BatchPlan::default();
    for schedule in schedules {
        let plan = match (schedule.spec(), schedule.next_fire_at) {
            (Ok(spec), Some(due)) => spec.plan(due, now, schedule.misfire_policy),
            (Err(err), _) => {
                tracing::error!(schedule = %schedule.name, error = %err, "schedule cannot be read; it stops firing");
                FirePlan {
                    fires: Vec::new(),
                    missed: None,
                    next_fire_at: None,
                }
            }
            (Ok(_), None) => continue,
        };
        batch.add(schedule, plan);
    }
    batch
}

impl BatchPlan {
    fn add(&mut self, schedule: &Schedule, plan: FirePlan) {
        if let Some(missed) = plan.missed {
            self.missed.push(MissedFires {
                schedule_id: schedule.id,
                name: schedule.name.clone(),
                missed,
                ran_once: plan.fires.first() == Some(&missed.last),
            });
        }
        let last_fire_at = plan.fires.last().copied();
        self.tasks.extend(plan.fires.iter().map(|at| NewTask {
            actor: Some(Actor::schedule(&schedule.name)),
            ..schedule.task.task_for(schedule.id, *at)
        }));
        self.advances.push(Advance {
            id: schedule.id,
            next_fire_at: plan.next_fire_at,
            last_fire_at,
            last_key: last_fire_at.map(|at| fire_key(schedule.id, at)),
        });
    }

    /// The fire keys of the latest fire of each schedule, to look their tasks up.
    pub fn last_keys(&self) -> Vec<String> {
        self.advances
            .iter()
            .filter_map(|a| a.last_key.clone())
            .collect()
    }
}

/// The task id for a fire key among `(id, key)` pairs.
pub(super) fn task_for_key(found: &[(Uuid, String)], key: Option<&String>) -> Option<Uuid> {
    let key = key?;
    found.iter().find(|(_, k)| k == key).map(|(id, _)| *id)
}

/// Maps a failed insert or update of a schedule: a unique violation is the name in use.
pub(super) fn name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("A schedule named '{name}' already exists"))
        }
        _ => err.into(),
    }
}

/// A schedule's expression or zone refused by the store (the API checks them first).
pub(super) fn invalid(err: crate::model::schedule::SpecError) -> StoreError {
    StoreError::Unsupported(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MisfirePolicy, NewSchedule, TaskTemplate};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn hourly(policy: MisfirePolicy, due: &str) -> Schedule {
        let mut schedule = NewSchedule {
            name: "hourly".into(),
            cron: "0 * * * *".into(),
            timezone: "UTC".into(),
            task: TaskTemplate::of_type("noop"),
            enabled: true,
            misfire_policy: policy,
        }
        .into_schedule(Uuid::new_v4(), at("2026-11-28T00:00:00Z"))
        .unwrap();
        schedule.next_fire_at = Some(at(due));
        schedule
    }

    #[test]
    fn a_batch_plans_each_schedule_and_reports_what_was_missed() {
        let now = at("2026-11-28T12:00:10Z");
        let once = hourly(MisfirePolicy::RunOnce, "2026-11-28T09:00:00Z");
        let skip = hourly(MisfirePolicy::Skip, "2026-11-28T09:00:00Z");
        let batch = plan_batch(&[once.clone(), skip.clone()], now);
        let keys: Vec<_> = batch
            .tasks
            .iter()
            .map(|t| t.idempotency_key.clone().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                fire_key(once.id, at("2026-11-28T11:00:00Z")),
                fire_key(once.id, at("2026-11-28T12:00:00Z")),
                fire_key(skip.id, at("2026-11-28T12:00:00Z")),
            ]
        );
        assert_eq!(
            batch
                .missed
                .iter()
                .map(|m| (m.schedule_id, m.ran_once))
                .collect::<Vec<_>>(),
            [(once.id, true), (skip.id, false)]
        );
        assert!(
            batch
                .advances
                .iter()
                .all(|a| a.next_fire_at == Some(at("2026-11-28T13:00:00Z")))
        );
        assert_eq!(batch.last_keys(), [keys[1].clone(), keys[2].clone()]);
    }

    #[test]
    fn a_schedule_whose_expression_no_longer_reads_stops_without_firing() {
        let mut broken = hourly(MisfirePolicy::RunOnce, "2026-11-28T12:00:00Z");
        broken.cron = "not a cron".into();
        let batch = plan_batch(&[broken], at("2026-11-28T12:00:10Z"));
        assert!(batch.tasks.is_empty());
        assert_eq!(batch.advances[0].next_fire_at, None);
    }
}
