//! Cron schedules: the stored schedule, its task template, and the pure rules for when it fires.
//!
//! Invariants:
//! - fire times are whole seconds, computed from the cron expression in the schedule's IANA
//!   time zone and kept in UTC; a fire time belongs to exactly one task, through the task's
//!   idempotency key `schedule:<schedule id>:<fire time, RFC 3339 UTC>` ([`fire_key`]);
//! - `next_fire_at` is the earliest fire time not yet planned, and null while the schedule is
//!   disabled (or when the expression will never match again). Enabling a schedule, or changing
//!   its expression or time zone, moves it to the first fire time after that moment: fires that
//!   fell while it was disabled never run;
//! - a fire is on time while it is at most [`MISFIRE_GRACE`] old. Older fires were missed (the
//!   service was down) and follow the schedule's [`MisfirePolicy`];
//! - daylight saving time follows croner: every wall-clock time that matches fires once. When
//!   clocks go back, a repeated wall-clock time fires at its first occurrence only; when they go
//!   forward, times that do not exist are skipped, except that an expression fixed to one second,
//!   minute and hour of the day fires at the first valid time after the gap.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::task::{DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, NewTask};

/// How old a fire time may be and still count as on time. The scheduler of a healthy process
/// looks at least once a second, so only a process that was down (or a database that was
/// unreachable) for about a minute leaves fires older than this.
pub const MISFIRE_GRACE: TimeDelta = TimeDelta::seconds(60);

/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// Most fire times one plan creates tasks for (the on-time fires of an every-second schedule
/// within the grace are 61).
const MAX_FIRES_PER_PLAN: usize = 1000;

/// Most times [`CronSpec::next_after`] skips a wall-clock time whose first occurrence already
/// passed (in the hour repeated when clocks go back: 3,600 for an every-second expression).
const MAX_REPEATED_SKIPS: usize = 10_000;

/// What happens to fires missed while no process could run them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// All missed fires together create one task, for the latest of them.
    #[default]
    RunOnce,
    /// Missed fires create nothing; the schedule goes on with its next fire.
    Skip,
}

impl MisfirePolicy {
    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MisfirePolicy::RunOnce => "run_once",
            MisfirePolicy::Skip => "skip",
        }
    }

    /// The policy with this name; None for anything else.
    pub fn parse(text: &str) -> Option<MisfirePolicy> {
        [MisfirePolicy::RunOnce, MisfirePolicy::Skip]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// The task a schedule creates at each fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskTemplate {
    /// Picks the handler that runs the task.
    #[serde(rename = "type")]
    pub task_type: String,
    /// The handler's input, a JSON object.
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Free text for people.
    pub description: String,
    /// Optional grouping: filters lists and may pick a domain-specific handler.
    pub domain: Option<String>,
    /// The queue the task waits in.
    pub queue: String,
    /// Higher runs first.
    pub priority: i32,
    /// Attempts allowed before a retryable failure becomes final.
    pub max_attempts: i32,
    /// Seconds an attempt may run; null means the engine's default for its path.
    pub timeout_seconds: Option<f64>,
    /// At or above the drift threshold the task runs on the escalated path.
    pub drift_score: f64,
}

impl TaskTemplate {
    /// A template of the given type with every other field at its default.
    pub fn of_type(task_type: impl Into<String>) -> TaskTemplate {
        TaskTemplate {
            task_type: task_type.into(),
            params: Map::new(),
            description: String::new(),
            domain: None,
            queue: DEFAULT_QUEUE.into(),
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout_seconds: None,
            drift_score: 0.0,
        }
    }

    /// The task for one fire of the schedule: queued at once, keyed by the fire time.
    pub fn task_for(&self, schedule_id: Uuid, fire_at: DateTime<Utc>) -> NewTask {
        NewTask {
            task_type: self.task_type.clone(),
            description: self.description.clone(),
            params: self.params.clone(),
            domain: self.domain.clone(),
            drift_score: self.drift_score,
            run_immediately: true,
            max_attempts: self.max_attempts,
            timeout_seconds: self.timeout_seconds,
            attached_fact_ids: Vec::new(),
            queue: self.queue.clone(),
            priority: self.priority,
            run_at: None,
            idempotency_key: Some(fire_key(schedule_id, fire_at)),
            ..NewTask::of_type(self.task_type.clone())
        }
    }
}

/// The idempotency key of the task for one fire: `schedule:<id>:<fire time, RFC 3339 UTC>`.
pub fn fire_key(schedule_id: Uuid, fire_at: DateTime<Utc>) -> String {
    format!(
        "schedule:{schedule_id}:{}",
        fire_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// A cron schedule as stored and as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// Assigned by the service when the schedule is created.
    pub id: Uuid,
    /// Unique among schedules.
    pub name: String,
    /// The cron expression: 5 fields (minute precision) or 6 (the first is the second).
    pub cron: String,
    /// The IANA time zone the expression is read in, e.g. `Europe/Zurich`.
    pub timezone: String,
    /// The task created at each fire.
    pub task: TaskTemplate,
    /// A disabled (paused) schedule creates nothing.
    pub enabled: bool,
    /// What happens to fires missed while the service was down.
    pub misfire_policy: MisfirePolicy,
    /// The next fire time not yet run; null while disabled.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The latest fire time a task was created for.
    pub last_fire_at: Option<DateTime<Utc>>,
    /// The task created for `last_fire_at`.
    pub last_task_id: Option<Uuid>,
    /// When the schedule was created.
    pub created_at: DateTime<Utc>,
    /// When the schedule was last changed through the API (fires do not change it).
    pub updated_at: DateTime<Utc>,
}

impl Schedule {
    /// The parsed expression in the schedule's zone.
    pub fn spec(&self) -> Result<CronSpec, SpecError> {
        CronSpec::parse(&self.cron, &self.timezone)
    }

    /// Applies a patch at `now`: every field given is replaced, `updated_at` is refreshed
    /// unless the patch is empty, and `next_fire_at` follows the module's rules (the first fire
    /// after `now` when the timing changed or the schedule was enabled again).
    pub fn apply(&mut self, patch: SchedulePatch, now: DateTime<Utc>) -> Result<(), SpecError> {
        if patch.is_empty() {
            return Ok(());
        }
        let timing_changed = patch.cron.as_ref().is_some_and(|c| *c != self.cron)
            || patch.timezone.as_ref().is_some_and(|t| *t != self.timezone);
        let resumed = patch.enabled == Some(true) && !self.enabled;
        let SchedulePatch {
            name,
            cron,
            timezone,
            task,
            enabled,
            misfire_policy,
        } = patch;
        replace(&mut self.name, name);
        replace(&mut self.cron, cron);
        replace(&mut self.timezone, timezone);
        replace(&mut self.enabled, enabled);
        replace(&mut self.misfire_policy, misfire_policy);
        task.apply(&mut self.task);
        self.updated_at = now;
        if !self.enabled {
            self.next_fire_at = None;
        } else if timing_changed || resumed || self.next_fire_at.is_none() {
            self.next_fire_at = self.spec()?.next_after(now);
        }
        Ok(())
    }
}

fn replace<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// A schedule to create, after validation.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSchedule {
    /// Unique among schedules.
    pub name: String,
    /// The cron expression (5 or 6 fields).
    pub cron: String,
    /// The IANA time zone; [`DEFAULT_TIMEZONE`] unless given.
    pub timezone: String,
    /// The task created at each fire.
    pub task: TaskTemplate,
    /// Whether it fires; true unless given.
    pub enabled: bool,
    /// What happens to missed fires.
    pub misfire_policy: MisfirePolicy,
}

impl NewSchedule {
    /// The schedule as stored under `id` when created at `now`: enabled, it first fires at the
    /// first fire time after `now`.
    pub fn into_schedule(self, id: Uuid, now: DateTime<Utc>) -> Result<Schedule, SpecError> {
        let next_fire_at = match self.enabled {
            true => CronSpec::parse(&self.cron, &self.timezone)?.next_after(now),
            false => None,
        };
        Ok(Schedule {
            id,
            name: self.name,
            cron: self.cron,
            timezone: self.timezone,
            task: self.task,
            enabled: self.enabled,
            misfire_policy: self.misfire_policy,
            next_fire_at,
            last_fire_at: None,
            last_task_id: None,
            created_at: now,
            updated_at: now,
        })
    }
}

/// The fields a PATCH changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedulePatch {
    /// A new unique name.
    pub name: Option<String>,
    /// A new cron expression.
    pub cron: Option<String>,
    /// A new time zone.
    pub timezone: Option<String>,
    /// Changes to the task template.
    pub task: TemplatePatch,
    /// Pauses (false) or resumes (true) the schedule.
    pub enabled: Option<bool>,
    /// A new misfire policy.
    pub misfire_policy: Option<MisfirePolicy>,
}

impl SchedulePatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.cron.is_none()
            && self.timezone.is_none()
            && self.task.is_empty()
            && self.enabled.is_none()
            && self.misfire_policy.is_none()
    }
}

/// Changes to a task template; `None` leaves a field as it is, and the optional fields take
/// `Some(None)` to clear them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplatePatch {
    /// A new task type.
    pub task_type: Option<String>,
    /// New params (replacing the old ones whole).
    pub params: Option<Map<String, Value>>,
    /// A new description.
    pub description: Option<String>,
    /// A new domain, or none.
    pub domain: Option<Option<String>>,
    /// A new queue.
    pub queue: Option<String>,
    /// A new priority.
    pub priority: Option<i32>,
    /// A new number of attempts.
    pub max_attempts: Option<i32>,
    /// A new timeout, or the engine's default.
    pub timeout_seconds: Option<Option<f64>>,
    /// A new drift score.
    pub drift_score: Option<f64>,
}

impl TemplatePatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == TemplatePatch::default()
    }

    /// Replaces the template's fields that the patch gives.
    pub fn apply(self, template: &mut TaskTemplate) {
        replace(&mut template.task_type, self.task_type);
        replace(&mut template.params, self.params);
        replace(&mut template.description, self.description);
        replace(&mut template.domain, self.domain);
        replace(&mut template.queue, self.queue);
        replace(&mut template.priority, self.priority);
        replace(&mut template.max_attempts, self.max_attempts);
        replace(&mut template.timeout_seconds, self.timeout_seconds);
        replace(&mut template.drift_score, self.drift_score);
    }
}

/// Why a cron expression or time zone was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The expression does not parse, or never matches a date.
    #[error("{0}")]
    Cron(String),
    /// No IANA time zone has this name.
    #[error("{0}")]
    Timezone(String),
}

/// Reads a cron expression: 5 fields (minute hour day-of-month month day-of-week, firing at
/// second 0) or 6 (with the second first), names such as `MON` and `JAN`, croner's extensions
/// (`L`, `W`, `#`) and the nicknames `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`.
pub fn parse_cron(text: &str) -> Result<Cron, SpecError> {
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    parser
        .parse(text)
        .map_err(|err| SpecError::Cron(format!("Invalid cron expression '{text}': {err}")))
}

/// Reads an IANA time zone name such as `UTC` or `America/New_York` (exact case).
pub fn parse_timezone(text: &str) -> Result<Tz, SpecError> {
    Tz::from_str(text).map_err(|_| {
        SpecError::Timezone(format!(
            "Unknown time zone '{text}': use an IANA name such as UTC or Europe/Zurich"
        ))
    })
}

/// A cron expression read in a time zone: what computes fire times.
#[derive(Clone, Debug)]
pub struct CronSpec {
    cron: Cron,
    tz: Tz,
}

impl CronSpec {
    /// Reads the expression and the zone.
    pub fn parse(cron: &str, timezone: &str) -> Result<CronSpec, SpecError> {
        Ok(CronSpec {
            cron: parse_cron(cron)?,
            tz: parse_timezone(timezone)?,
        })
    }

    /// Refuses an expression that will never match after `now` (say, February 30th). Slow for
    /// such an expression (croner searches centuries), so run it off the async threads.
    pub fn check_fires(&self, now: DateTime<Utc>) -> Result<(), SpecError> {
        match self.next_after(now) {
            Some(_) => Ok(()),
            None => Err(SpecError::Cron(format!(
                "The cron expression '{}' never matches a date",
                self.cron.pattern.as_str()
            ))),
        }
    }

    /// The first fire time strictly after `after`; None when there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Croner keeps the sub-second part of its start; fire times are whole seconds.
        let mut from = after.with_nanosecond(0)?.with_timezone(&self.tz);
        for _ in 0..MAX_REPEATED_SKIPS {
            let found = self.cron.find_next_occurrence(&from, false).ok()?;
            if found > after {
                return Some(found.with_timezone(&Utc));
            }
            // `after` lies in the hour repeated when clocks went back, and croner named the
            // first occurrence of a wall-clock time, which has passed: each wall-clock time
            // fires once, so go on after its second occurrence.
            from = self.tz.from_local_datetime(&found.naive_local()).latest()?;
        }
        None
    }

    /// The first `n` fire times at or after `from`.
    pub fn fire_times_from(&self, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let first = self.at_or_after(from);
        std::iter::successors(first, |at| self.next_after(*at))
            .take(n)
            .collect()
    }

    /// The first `n` fire times strictly after `after`.
    pub fn next_fire_times(&self, n: usize, after: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        std::iter::successors(self.next_after(after), |at| self.next_after(*at))
            .take(n)
            .collect()
    }

    fn at_or_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after(at - TimeDelta::nanoseconds(1))
    }

    /// What to do about a schedule whose next fire time is `due`, at `now`: which fire times
    /// get a task and which fire time comes next. On-time fires (at most [`MISFIRE_GRACE`] old)
    /// each get one; missed ones get one task together (for the latest) under
    /// [`MisfirePolicy::RunOnce`] and none under [`MisfirePolicy::Skip`].
    pub fn plan(&self, due: DateTime<Utc>, now: DateTime<Utc>, policy: MisfirePolicy) -> FirePlan {
        if due > now {
            return FirePlan {
                fires: Vec::new(),
                missed: None,
                next_fire_at: Some(due),
            };
        }
        let cutoff = now - MISFIRE_GRACE;
        let missed = (due < cutoff).then(|| Missed {
            first: due,
            last: self.last_before(due, cutoff),
        });
        let mut fires = Vec::new();
        if let (Some(missed), MisfirePolicy::RunOnce) = (&missed, policy) {
            fires.push(missed.last);
        }
        let on_time = if due >= cutoff {
            Some(due)
        } else {
            self.at_or_after(cutoff)
        };
        let mut at = on_time;
        while let Some(fire) = at.filter(|t| *t <= now && fires.len() < MAX_FIRES_PER_PLAN) {
            fires.push(fire);
            at = self.next_after(fire);
        }
        FirePlan {
            fires,
            missed,
            next_fire_at: self.next_after(now),
        }
    }

    /// The latest fire time before `cutoff`, given that `due` is one (so the answer is `due` or
    /// later).
    fn last_before(&self, due: DateTime<Utc>, cutoff: DateTime<Utc>) -> DateTime<Utc> {
        // Croner searches backwards from whole seconds, exclusively: from `cutoff` rounded up.
        let rounded = match cutoff.nanosecond() {
            0 => Some(cutoff),
            _ => cutoff.with_nanosecond(0).map(|t| t + TimeDelta::seconds(1)),
        };
        let found = rounded.and_then(|from| {
            let from = from.with_timezone(&self.tz);
            let found = self.cron.find_previous_occurrence(&from, false).ok()?;
            Some(found.with_timezone(&Utc))
        });
        // Backwards and forwards searches disagree around clock changes; trust the answer only
        // when the forward rules agree that it is a fire time and the last before `cutoff`.
        match found {
            Some(last)
                if last >= due
                    && last < cutoff
                    && self.at_or_after(last) == Some(last)
                    && self.next_after(last).is_none_or(|next| next >= cutoff) =>
            {
                last
            }
            _ => self.last_before_walking(due, cutoff),
        }
    }

    fn last_before_walking(&self, due: DateTime<Utc>, cutoff: DateTime<Utc>) -> DateTime<Utc> {
        std::iter::successors(Some(due), |at| self.next_after(*at))
            .take_while(|at| *at < cutoff)
            .take(1_000_000)
            .last()
            .unwrap_or(due)
    }
}

/// Fires a schedule missed: from `first` to `last`, both fire times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missed {
    /// The earliest missed fire (the schedule's `next_fire_at` when planned).
    pub first: DateTime<Utc>,
    /// The latest missed fire.
    pub last: DateTime<Utc>,
}

/// What one look at a due schedule decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirePlan {
    /// The fire times to create a task for, oldest first.
    pub fires: Vec<DateTime<Utc>>,
    /// The fires that were missed (more than the grace old), if any.
    pub missed: Option<Missed>,
    /// The schedule's next fire time: the first strictly after now.
    pub next_fire_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn spec(cron: &str, tz: &str) -> CronSpec {
        CronSpec::parse(cron, tz).unwrap()
    }

    fn texts(times: &[DateTime<Utc>]) -> Vec<String> {
        times
            .iter()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .collect()
    }

    #[test]
    fn five_fields_fire_on_the_minute_and_six_fields_on_the_second() {
        let after = at("2026-11-28T12:00:30.250Z");
        assert_eq!(
            texts(&spec("*/15 * * * *", "UTC").next_fire_times(3, after)),
            [
                "2026-11-28T12:15:00Z",
                "2026-11-28T12:30:00Z",
                "2026-11-28T12:45:00Z"
            ]
        );
        assert_eq!(
            texts(&spec("*/20 * * * * *", "UTC").next_fire_times(3, after)),
            [
                "2026-11-28T12:00:40Z",
                "2026-11-28T12:01:00Z",
                "2026-11-28T12:01:20Z"
            ]
        );
    }

    #[test]
    fn with_both_day_fields_restricted_a_day_matching_either_fires() {
        // 2026-11-28 is a Saturday: the next Friday (Dec 4) comes before the 13th.
        let friday_or_13th = spec("0 0 13 * FRI", "UTC");
        assert_eq!(
            texts(&friday_or_13th.next_fire_times(3, at("2026-11-28T12:00:00Z"))),
            [
                "2026-12-04T00:00:00Z",
                "2026-12-11T00:00:00Z",
                "2026-12-13T00:00:00Z"
            ]
        );
    }

    #[test]
    fn a_fire_time_is_strictly_after_the_instant_and_a_whole_second() {
        let every_second = spec("* * * * * *", "UTC");
        assert_eq!(
            every_second.next_after(at("2026-11-28T12:00:00Z")),
            Some(at("2026-11-28T12:00:01Z"))
        );
        assert_eq!(
            every_second.next_after(at("2026-11-28T12:00:00.999Z")),
            Some(at("2026-11-28T12:00:01Z"))
        );
    }

    #[test]
    fn the_expression_is_read_in_the_schedules_time_zone() {
        // 09:00 in Zurich is 08:00 UTC in winter (CET, +01:00) and 07:00 in summer (CEST).
        let nine = spec("0 9 * * MON-FRI", "Europe/Zurich");
        assert_eq!(
            texts(&nine.next_fire_times(2, at("2026-11-27T12:00:00Z"))),
            ["2026-11-30T08:00:00Z", "2026-12-01T08:00:00Z"]
        );
        assert_eq!(
            texts(&nine.next_fire_times(1, at("2026-07-01T00:00:00Z"))),
            ["2026-07-01T07:00:00Z"]
        );
        let tokyo = spec("30 0 0 1 * *", "Asia/Tokyo");
        assert_eq!(
            texts(&tokyo.next_fire_times(2, at("2026-11-28T00:00:00Z"))),
            ["2026-11-30T15:00:30Z", "2026-12-31T15:00:30Z"]
        );
    }

    #[test]
    fn a_wall_clock_time_repeated_when_clocks_go_back_fires_once() {
        // New York goes from EDT (-04:00) to EST (-05:00) at 06:00 UTC on 2026-11-01: the
        // wall-clock hour 01:00-02:00 happens twice.
        let half_hourly = spec("*/30 * * * *", "America/New_York");
        assert_eq!(
            texts(&half_hourly.next_fire_times(4, at("2026-11-01T04:45:00Z"))),
            [
                "2026-11-01T05:00:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-01T07:00:00Z",
                "2026-11-01T07:30:00Z"
            ]
        );
        // From inside the repeated hour, nothing already run fires again or lies in the past.
        assert_eq!(
            half_hourly.next_after(at("2026-11-01T06:10:00Z")),
            Some(at("2026-11-01T07:00:00Z"))
        );
    }

    #[test]
    fn a_fixed_time_skipped_when_clocks_go_forward_fires_after_the_gap() {
        // On 2026-03-08 New York skips from 02:00 to 03:00 EDT: 02:30 does not exist that day.
        let half_past_two = spec("30 2 * * *", "America/New_York");
        assert_eq!(
            texts(&half_past_two.next_fire_times(2, at("2026-03-07T12:00:00Z"))),
            ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_their_own_error() {
        for cron in [
            "",
            "* * * *",
            "* * * * * * *",
            "61 * * * *",
            "* * * * FOO",
            "hello",
        ] {
            assert!(
                matches!(parse_cron(cron), Err(SpecError::Cron(_))),
                "{cron:?}"
            );
        }
        assert!(parse_cron("@daily").is_ok());
        for zone in ["Mars/Olympus", "", "europe/zurich", "+02:00"] {
            assert!(
                matches!(parse_timezone(zone), Err(SpecError::Timezone(_))),
                "{zone:?}"
            );
        }
        let never = spec("0 0 30 2 *", "UTC");
        assert!(matches!(
            never.check_fires(at("2026-11-28T00:00:00Z")),
            Err(SpecError::Cron(_))
        ));
    }

    #[test]
    fn a_schedule_that_is_not_due_plans_nothing() {
        let plan = spec("* * * * *", "UTC").plan(
            at("2026-11-28T12:01:00Z"),
            at("2026-11-28T12:00:59Z"),
            MisfirePolicy::RunOnce,
        );
        assert!(plan.fires.is_empty());
        assert_eq!(plan.next_fire_at, Some(at("2026-11-28T12:01:00Z")));
    }

    #[test]
    fn on_time_fires_each_get_a_task_and_the_next_fire_is_after_now() {
        let plan = spec("*/10 * * * * *", "UTC").plan(
            at("2026-11-28T12:00:10Z"),
            at("2026-11-28T12:00:35Z"),
            MisfirePolicy::Skip,
        );
        assert_eq!(
            texts(&plan.fires),
            [
                "2026-11-28T12:00:10Z",
                "2026-11-28T12:00:20Z",
                "2026-11-28T12:00:30Z"
            ]
        );
        assert_eq!(plan.missed, None);
        assert_eq!(plan.next_fire_at, Some(at("2026-11-28T12:00:40Z")));
    }

    #[test]
    fn a_fire_exactly_the_grace_old_is_still_on_time() {
        let plan = spec("* * * * *", "UTC").plan(
            at("2026-11-28T12:00:00Z"),
            at("2026-11-28T12:01:00Z"),
            MisfirePolicy::Skip,
        );
        assert_eq!(
            texts(&plan.fires),
            ["2026-11-28T12:00:00Z", "2026-11-28T12:01:00Z"]
        );
        assert_eq!(plan.missed, None);
    }

    #[test]
    fn run_once_collapses_missed_fires_into_one_task_for_the_latest() {
        // Down from 09:00 to 12:00:30: the hourly fires of 09:00, 10:00, 11:00 were missed and
        // 12:00 is on time.
        let plan = spec("0 * * * *", "UTC").plan(
            at("2026-11-28T09:00:00Z"),
            at("2026-11-28T12:00:30Z"),
            MisfirePolicy::RunOnce,
        );
        assert_eq!(
            texts(&plan.fires),
            ["2026-11-28T11:00:00Z", "2026-11-28T12:00:00Z"]
        );
        assert_eq!(
            plan.missed,
            Some(Missed {
                first: at("2026-11-28T09:00:00Z"),
                last: at("2026-11-28T11:00:00Z")
            })
        );
        assert_eq!(plan.next_fire_at, Some(at("2026-11-28T13:00:00Z")));
    }

    #[test]
    fn skip_drops_missed_fires_and_keeps_the_on_time_ones() {
        let plan = spec("0 * * * *", "UTC").plan(
            at("2026-11-28T09:00:00Z"),
            at("2026-11-28T12:00:30Z"),
            MisfirePolicy::Skip,
        );
        assert_eq!(texts(&plan.fires), ["2026-11-28T12:00:00Z"]);
        assert!(plan.missed.is_some());
        let nothing_on_time = spec("0 * * * *", "UTC").plan(
            at("2026-11-28T09:00:00Z"),
            at("2026-11-28T11:30:00Z"),
            MisfirePolicy::Skip,
        );
        assert!(nothing_on_time.fires.is_empty());
        assert_eq!(
            nothing_on_time.next_fire_at,
            Some(at("2026-11-28T12:00:00Z"))
        );
    }

    #[test]
    fn a_long_outage_of_an_every_second_schedule_plans_one_missed_and_the_grace_on_time() {
        let plan = spec("* * * * * *", "UTC").plan(
            at("2026-11-20T00:00:00Z"),
            at("2026-11-28T12:00:00.500Z"),
            MisfirePolicy::RunOnce,
        );
        // The grace reaches back to 11:59:00.5: 11:59:00 was missed, 11:59:01 is on time.
        assert_eq!(plan.fires.len(), 1 + 60);
        assert_eq!(plan.fires[0], at("2026-11-28T11:59:00Z"));
        assert_eq!(plan.fires[1], at("2026-11-28T11:59:01Z"));
        assert_eq!(plan.fires[60], at("2026-11-28T12:00:00Z"));
        assert_eq!(plan.next_fire_at, Some(at("2026-11-28T12:00:01Z")));
    }

    #[test]
    fn the_missed_fire_is_found_in_the_schedules_zone() {
        // Daily at 09:00 Zurich (08:00 UTC in winter); down for three days.
        let plan = spec("0 9 * * *", "Europe/Zurich").plan(
            at("2026-11-25T08:00:00Z"),
            at("2026-11-28T07:00:00Z"),
            MisfirePolicy::RunOnce,
        );
        assert_eq!(texts(&plan.fires), ["2026-11-27T08:00:00Z"]);
        assert_eq!(plan.next_fire_at, Some(at("2026-11-28T08:00:00Z")));
    }

    #[test]
    fn the_missed_fire_across_clocks_going_back_is_one_that_the_forward_rules_fire() {
        // Half-hourly in New York, down across the repeated hour: forwards the fires are
        // 05:00, 05:30 (01:30 EDT) and then 07:00 UTC (02:00 EST).
        let plan = spec("*/30 * * * *", "America/New_York").plan(
            at("2026-11-01T04:00:00Z"),
            at("2026-11-01T06:40:00Z"),
            MisfirePolicy::RunOnce,
        );
        assert_eq!(texts(&plan.fires), ["2026-11-01T05:30:00Z"]);
        assert_eq!(plan.next_fire_at, Some(at("2026-11-01T07:00:00Z")));
    }

    #[test]
    fn fire_keys_name_the_schedule_and_the_utc_second() {
        let id = Uuid::parse_str("0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b").unwrap();
        assert_eq!(
            fire_key(id, at("2026-11-28T13:00:05+01:00")),
            "schedule:0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b:2026-11-28T12:00:05Z"
        );
    }

    fn schedule(now: DateTime<Utc>) -> Schedule {
        NewSchedule {
            name: "hourly".into(),
            cron: "0 * * * *".into(),
            timezone: DEFAULT_TIMEZONE.into(),
            task: TaskTemplate::of_type("noop"),
            enabled: true,
            misfire_policy: MisfirePolicy::RunOnce,
        }
        .into_schedule(Uuid::new_v4(), now)
        .unwrap()
    }

    #[test]
    fn a_new_enabled_schedule_first_fires_after_its_creation_and_a_disabled_one_never() {
        let now = at("2026-11-28T12:30:00Z");
        assert_eq!(schedule(now).next_fire_at, Some(at("2026-11-28T13:00:00Z")));
        let mut paused = schedule(now);
        paused
            .apply(
                SchedulePatch {
                    enabled: Some(false),
                    ..SchedulePatch::default()
                },
                now,
            )
            .unwrap();
        assert_eq!(paused.next_fire_at, None);
    }

    #[test]
    fn resuming_starts_from_the_next_fire_after_now_without_back_filling() {
        let mut hourly = schedule(at("2026-11-28T12:30:00Z"));
        let pause = SchedulePatch {
            enabled: Some(false),
            ..SchedulePatch::default()
        };
        hourly.apply(pause, at("2026-11-28T12:40:00Z")).unwrap();
        let resume = SchedulePatch {
            enabled: Some(true),
            ..SchedulePatch::default()
        };
        hourly.apply(resume, at("2026-11-28T17:10:00Z")).unwrap();
        assert_eq!(hourly.next_fire_at, Some(at("2026-11-28T18:00:00Z")));
        assert_eq!(hourly.updated_at, at("2026-11-28T17:10:00Z"));
    }

    #[test]
    fn a_new_expression_or_zone_moves_the_next_fire_and_other_changes_keep_it() {
        let mut hourly = schedule(at("2026-11-28T12:30:00Z"));
        let template_only = SchedulePatch {
            task: TemplatePatch {
                priority: Some(5),
                domain: Some(Some("reports".into())),
                ..TemplatePatch::default()
            },
            ..SchedulePatch::default()
        };
        hourly
            .apply(template_only, at("2026-11-28T12:45:00Z"))
            .unwrap();
        assert_eq!(hourly.next_fire_at, Some(at("2026-11-28T13:00:00Z")));
        assert_eq!(
            (hourly.task.priority, hourly.task.domain.as_deref()),
            (5, Some("reports"))
        );
        let zone = SchedulePatch {
            cron: Some("0 15 * * *".into()),
            timezone: Some("Asia/Tokyo".into()),
            ..SchedulePatch::default()
        };
        hourly.apply(zone, at("2026-11-28T12:50:00Z")).unwrap();
        // 15:00 in Tokyo (+09:00) is 06:00 UTC: today's has passed.
        assert_eq!(hourly.next_fire_at, Some(at("2026-11-29T06:00:00Z")));
    }

    #[test]
    fn an_empty_patch_changes_nothing_not_even_updated_at() {
        let mut hourly = schedule(at("2026-11-28T12:30:00Z"));
        let before = hourly.clone();
        hourly
            .apply(SchedulePatch::default(), at("2026-11-28T13:30:00Z"))
            .unwrap();
        assert_eq!(hourly, before);
    }

    #[test]
    fn a_fires_task_is_queued_with_the_template_and_keyed_by_the_fire() {
        let template = TaskTemplate {
            priority: 7,
            queue: "reports".into(),
            ..TaskTemplate::of_type("report")
        };
        let id = Uuid::new_v4();
        let task = template.task_for(id, at("2026-11-28T12:00:00Z"));
        assert_eq!(task.initial_status(), super::super::TaskStatus::Queued);
        assert_eq!((task.priority, task.queue.as_str()), (7, "reports"));
        assert_eq!(
            task.idempotency_key,
            Some(format!("schedule:{id}:2026-11-28T12:00:00Z"))
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// One field of a cron expression over `low..=high`: every value, a value, a range, a
        /// step or a list.
        fn field(low: u32, high: u32) -> impl Strategy<Value = String> {
            let value = low..=high;
            prop_oneof![
                Just("*".to_string()),
                value.clone().prop_map(|v| v.to_string()),
                (value.clone(), value.clone()).prop_map(|(a, b)| format!(
                    "{}-{}",
                    a.min(b),
                    a.max(b)
                )),
                (1..=high.max(2)).prop_map(|step| format!("*/{step}")),
                proptest::collection::btree_set(value, 1..4).prop_map(|set| {
                    set.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
                }),
            ]
        }

        /// Five-field expressions that fire at least once a year (days of the month up to 28).
        fn firing_cron() -> impl Strategy<Value = String> {
            (
                field(0, 59),
                field(0, 23),
                field(1, 28),
                field(1, 12),
                prop_oneof![Just("*".to_string()), field(0, 6)],
            )
                .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
        }

        fn any_zone() -> impl Strategy<Value = Tz> {
            proptest::sample::select(chrono_tz::TZ_VARIANTS.to_vec())
        }

        /// A time between 1990 and 2100, in whole microseconds.
        fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
            (631_152_000_000_000i64..4_102_444_800_000_000)
                .prop_map(|micros| DateTime::from_timestamp_micros(micros).unwrap())
        }

        /// Text made of what cron expressions are made of, and anything else.
        fn cron_like() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9*/,LW#?A-Za-z@ -]{0,40}",
                "\\PC{0,30}",
                Just("@yearly".to_string()),
                Just("0 0 30 2 *".to_string()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_either_parses_or_is_refused_naming_it(text in cron_like()) {
                if let Err(SpecError::Cron(msg)) = parse_cron(&text) {
                    prop_assert!(msg.contains(&text), "{msg}");
                }
            }

            #[test]
            fn any_zone_name_either_parses_or_is_refused_naming_it(
                text in "[A-Za-z_/+0-9-]{0,30}|\\PC{0,20}",
            ) {
                match parse_timezone(&text) {
                    Ok(zone) => prop_assert_eq!(zone.name(), text.as_str()),
                    Err(SpecError::Timezone(msg)) => prop_assert!(msg.contains(&text)),
                    Err(other) => prop_assert!(false, "{other:?}"),
                }
            }

            #[test]
            fn every_known_zone_parses_as_itself(zone in any_zone()) {
                prop_assert_eq!(parse_timezone(zone.name()), Ok(zone));
            }

            #[test]
            fn fire_times_are_whole_seconds_after_the_start_and_increasing(
                cron in firing_cron(),
                zone in any_zone(),
                from in any_time(),
            ) {
                let spec = CronSpec::parse(&cron, zone.name()).unwrap();
                prop_assert!(spec.check_fires(from).is_ok(), "{cron} never fires");
                let times = spec.next_fire_times(3, from);
                prop_assert_eq!(times.len(), 3, "{} in {}", cron, zone);
                let mut previous = from;
                for at in times {
                    prop_assert!(at > previous, "{cron} in {zone}: {at} after {previous}");
                    prop_assert_eq!(at.nanosecond(), 0);
                    previous = at;
                }
            }

            #[test]
            fn a_plan_fires_only_due_times_in_order_and_looks_past_now(
                cron in firing_cron(),
                zone in any_zone(),
                now in any_time(),
                late_seconds in 0i64..3 * 86_400,
                skip in any::<bool>(),
            ) {
                let spec = CronSpec::parse(&cron, zone.name()).unwrap();
                let Some(due) = spec.next_after(now - TimeDelta::seconds(late_seconds)) else {
                    return Err(TestCaseError::fail("a firing expression stopped firing"));
                };
                let policy = if skip { MisfirePolicy::Skip } else { MisfirePolicy::RunOnce };
                let plan = spec.plan(due, now, policy);
                prop_assert!(plan.fires.windows(2).all(|w| w[0] < w[1]), "{plan:?}");
                prop_assert!(plan.fires.iter().all(|at| *at >= due && *at <= now), "{plan:?}");
                prop_assert!(plan.next_fire_at.is_some_and(|next| next > now), "{plan:?}");
                if let Some(missed) = plan.missed {
                    prop_assert!(missed.first <= missed.last && missed.last < now - MISFIRE_GRACE);
                }
            }
        }
    }
}
