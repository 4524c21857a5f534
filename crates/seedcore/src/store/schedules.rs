//! What both backends share for cron schedules: the report of a firing, the plan of one firing
//! (which tasks to insert, how each schedule moves on), the task of a manual trigger, the fire
//! history as read back, and the error for a name in use.
//!
//! Exactly once per fire time comes from three things a backend does in one transaction: lock
//! the due schedules (so no two processes plan the same schedule at once), insert the planned
//! tasks with their fire keys (`on conflict do nothing`: a key already used creates nothing),
//! and advance `next_fire_at` past the planned fires.
//!
//! The fire history (`schedule_fires`) is written in that same transaction, one row per task
//! actually inserted ([`BatchPlan::recorded`]), so a fire whose key was already used records
//! nothing a second time; the transaction then keeps only the newest [`FIRE_HISTORY`] rows of
//! each schedule it touched. A manual trigger does the same for its one task and leaves
//! `next_fire_at`, `last_fire_at` and `last_task_id` alone: those describe the cron's fires.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    StoreError, StoreResult,
    rows::{Dialect, parse_status},
};
use crate::model::{
    Actor, NewTask, Schedule, Task, TaskStatus,
    schedule::{FirePlan, Missed, fire_key},
};

/// Most due schedules one firing takes; the scheduler calls again at once when it took as many.
pub const FIRE_BATCH: i64 = 100;

/// How many fires of each schedule the history keeps (the newest).
pub const FIRE_HISTORY: i64 = 100;

/// One fire of a schedule as the history shows it, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ScheduleFire {
    /// The scheduled fire time, or the moment of a manual trigger (RFC 3339, UTC).
    pub fired_at: DateTime<Utc>,
    /// Whether someone triggered it (`POST /api/v1/schedules/{id}/trigger`).
    pub manual: bool,
    /// The task the fire created.
    pub task_id: Uuid,
    /// That task as it is now; null once it was deleted or pruned.
    pub task: Option<FiredTask>,
}

/// The current state of the task of a fire.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FiredTask {
    /// The task's id (the fire's `task_id`).
    pub id: Uuid,
    /// Its status now.
    pub status: TaskStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it reached a final status; null before.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A history row joined with its task (the task's columns null when it is gone), as both
/// backends read it: `fired_at, manual, task_id` of the fire, then the task's `id, status,
/// created_at, finished_at`.
#[derive(sqlx::FromRow)]
pub(crate) struct FireRow<D: Dialect> {
    fired_at: D::Time,
    manual: bool,
    task_id: D::Id,
    id: Option<D::Id>,
    status: Option<String>,
    created_at: Option<D::Time>,
    finished_at: Option<D::Time>,
}

impl<D: Dialect> FireRow<D> {
    fn into_fire(self) -> StoreResult<ScheduleFire> {
        let task = match (self.id, self.status, self.created_at) {
            (Some(id), Some(status), Some(created_at)) => Some(FiredTask {
                id: D::id(id)?,
                status: parse_status(&status)?,
                created_at: D::time(created_at)?,
                finished_at: self.finished_at.map(D::time).transpose()?,
            }),
            _ => None,
        };
        Ok(ScheduleFire {
            fired_at: D::time(self.fired_at)?,
            manual: self.manual,
            task_id: D::id(self.task_id)?,
            task,
        })
    }
}

/// The fires of history rows.
pub(crate) fn fires<D: Dialect>(rows: Vec<FireRow<D>>) -> StoreResult<Vec<ScheduleFire>> {
    rows.into_iter().map(FireRow::into_fire).collect()
}

/// The schedules whose history rows were written, each once, to prune their history.
pub(super) fn touched(records: &[FireRecord]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = records.iter().map(|r| r.schedule_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A row of the fire history to write, for a task being inserted in the same transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct FireRecord {
    pub schedule_id: Uuid,
    pub fired_at: DateTime<Utc>,
    pub task_id: Uuid,
    pub manual: bool,
}

/// The task and history row of a manual trigger of `schedule` at `now` by `actor`: the
/// template's task, queued at once, under a key of its own ([`manual_key`]).
pub(super) fn manual_fire(
    schedule: &Schedule,
    actor: Actor,
    now: DateTime<Utc>,
) -> (NewTask, FireRecord) {
    let mut task = schedule.task.task_for(schedule.id, now);
    task.idempotency_key = Some(manual_key(schedule.id, task.id));
    task.actor = Some(actor);
    let record = FireRecord {
        schedule_id: schedule.id,
        fired_at: now,
        task_id: task.id,
        manual: true,
    };
    (task, record)
}

/// The idempotency key of a manually triggered task: `schedule:<id>:manual:<task id>`. Unique
/// by its task id, so it never meets a fire key or another trigger, and every task a schedule
/// made, fired or triggered, is found by the prefix `schedule:<id>:`.
pub fn manual_key(schedule_id: Uuid, task_id: Uuid) -> String {
    format!("schedule:{schedule_id}:manual:{task_id}")
}

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
    /// One history row per planned task, written for those actually inserted.
    pub fires: Vec<FireRecord>,
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
        for at in &plan.fires {
            let task = NewTask {
                actor: Some(Actor::schedule(&schedule.name)),
                ..schedule.task.task_for(schedule.id, *at)
            };
            self.fires.push(FireRecord {
                schedule_id: schedule.id,
                fired_at: *at,
                task_id: task.id,
                manual: false,
            });
            self.tasks.push(task);
        }
        self.advances.push(Advance {
            id: schedule.id,
            next_fire_at: plan.next_fire_at,
            last_fire_at,
            last_key: last_fire_at.map(|at| fire_key(schedule.id, at)),
        });
    }

    /// The history rows of the planned tasks that were inserted (the ids of `inserted`): a fire
    /// whose key was already used created nothing, and records nothing.
    pub fn recorded(&self, inserted: &[Task]) -> Vec<FireRecord> {
        self.recorded_ids(inserted.iter().map(|t| t.id))
    }

    fn recorded_ids(&self, inserted: impl IntoIterator<Item = Uuid>) -> Vec<FireRecord> {
        let ids: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
        self.fires
            .iter()
            .filter(|f| ids.contains(&f.task_id))
            .cloned()
            .collect()
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

    #[test]
    fn only_the_fires_whose_tasks_were_inserted_are_recorded() {
        let once = hourly(MisfirePolicy::RunOnce, "2026-11-28T11:00:00Z");
        let batch = plan_batch(std::slice::from_ref(&once), at("2026-11-28T12:00:10Z"));
        assert_eq!(batch.fires.len(), 2);
        // The first fire's key was already used: only the second task was inserted.
        let recorded = batch.recorded_ids([batch.tasks[1].id]);
        assert_eq!(recorded.len(), 1);
        assert_eq!(
            (
                recorded[0].task_id,
                recorded[0].fired_at,
                recorded[0].manual
            ),
            (batch.tasks[1].id, at("2026-11-28T12:00:00Z"), false)
        );
        assert_eq!(touched(&batch.fires), [once.id]);
    }

    #[test]
    fn a_manual_fire_is_the_templates_task_under_a_key_of_its_own_acted_by_the_caller() {
        let schedule = hourly(MisfirePolicy::RunOnce, "2026-11-28T13:00:00Z");
        let now = at("2026-11-28T12:34:56.789Z");
        let (task, fire) = manual_fire(&schedule, Actor::token("ops"), now);
        assert_eq!(task.task_type, "noop");
        assert!(task.run_immediately);
        assert_eq!(
            task.idempotency_key,
            Some(format!("schedule:{}:manual:{}", schedule.id, task.id))
        );
        assert_eq!(task.actor, Some(Actor::token("ops")));
        assert_eq!(
            fire,
            FireRecord {
                schedule_id: schedule.id,
                fired_at: now,
                task_id: task.id,
                manual: true
            }
        );
    }
}
