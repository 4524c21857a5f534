//! Validation of schedule bodies (create and PATCH): every problem is reported at once, located
//! relative to the body (`["name"]`, `["task", "queue"]`), and keys a schedule does not have
//! are refused rather than ignored, so that a misspelt field never silently does nothing.

use chrono::Utc;
use serde_json::{Map, Value};

use super::tasks;
use crate::{
    model::{
        MisfirePolicy, NewSchedule, SchedulePatch, TaskTemplate, TemplatePatch,
        schedule::{CronSpec, DEFAULT_TIMEZONE, SpecError, parse_timezone},
        task::DEFAULT_QUEUE,
    },
    validate::{
        FieldError, Fields, nul_errors,
        spec::{self, Boolean, Choice, Documented, Object, Spec, Text},
    },
};

const NAME: Spec<Text> = spec::text("name", "Unique among schedules.")
    .required()
    .chars(1, MAX_NAME)
    .stored();
const CRON: Spec<Text> = spec::text(
    "cron",
    "5 fields (`minute hour day month weekday`, firing at second 0) or 6 (second first); names \
     (`MON`, `JAN`), `L`, `W`, `#` and `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` \
     are understood. An expression that is malformed or never matches a date to come is \
     refused (422).",
)
.required()
.non_empty()
.stored();
const TIMEZONE: Spec<Choice> = spec::choice(
    "timezone",
    timezone_names,
    "an IANA time zone name",
    "An IANA time zone (default `UTC`).",
)
.stored();
const ENABLED: Spec<Boolean> = spec::boolean(
    "enabled",
    "Default true; false pauses. Turned on again, it resumes from the next fire time after \
     now (missed fires never run).",
);
const MISFIRE_POLICY: Spec<Choice> = spec::choice(
    "misfire_policy",
    misfire_names,
    "'run_once' or 'skip'",
    "`run_once` (default): fires missed while the service was down create one task; `skip`: \
     they create none.",
);
const TASK: Spec<Object> = spec::object("task", "The task each fire creates.")
    .shaped(NEW_TEMPLATE)
    .required()
    .null_error("missing", "Field required");
const TASK_PATCH: Spec<Object> = spec::object(
    "task",
    "Changes to the task each fire creates: only the fields given change; null resets one to \
     its default.",
)
.shaped(TEMPLATE_PATCH);

/// The fields of a task template: those of a task that a schedule can fix in advance.
const NEW_TEMPLATE: &[&dyn Documented] = &[
    &tasks::TYPE,
    &tasks::PARAMS,
    &tasks::DESCRIPTION,
    &tasks::DOMAIN,
    &tasks::QUEUE,
    &tasks::PRIORITY,
    &tasks::MAX_ATTEMPTS,
    &tasks::TIMEOUT_SECONDS,
    &tasks::DRIFT_SCORE,
];
/// A template's type in a PATCH: may be left out, not null.
const PATCH_TYPE: Spec<Text> = tasks::TYPE.optional();
/// The fields of a template PATCH.
const TEMPLATE_PATCH: &[&dyn Documented] = &[
    &PATCH_TYPE,
    &tasks::PARAMS,
    &tasks::DESCRIPTION,
    &tasks::DOMAIN,
    &tasks::QUEUE,
    &tasks::PRIORITY,
    &tasks::MAX_ATTEMPTS,
    &tasks::TIMEOUT_SECONDS,
    &tasks::DRIFT_SCORE,
];
/// The fields of a new schedule.
pub const NEW_SCHEDULE: &[&dyn Documented] =
    &[&NAME, &CRON, &TIMEZONE, &TASK, &ENABLED, &MISFIRE_POLICY];
/// The fields of a schedule PATCH: any of the create fields, none null.
const PATCH_NAME: Spec<Text> = NAME.optional().null_error(NULL_KIND, NULL_MSG);
const PATCH_CRON: Spec<Text> = CRON.optional().null_error(NULL_KIND, NULL_MSG);
const PATCH_TIMEZONE: Spec<Choice> = TIMEZONE.null_error(NULL_KIND, NULL_MSG);
const PATCH_ENABLED: Spec<Boolean> = ENABLED.null_error(NULL_KIND, NULL_MSG);
const PATCH_MISFIRE_POLICY: Spec<Choice> = MISFIRE_POLICY.null_error(NULL_KIND, NULL_MSG);
const PATCH_TASK: Spec<Object> = TASK_PATCH.null_error(NULL_KIND, NULL_MSG);
pub const SCHEDULE_PATCH: &[&dyn Documented] = &[
    &PATCH_NAME,
    &PATCH_CRON,
    &PATCH_TIMEZONE,
    &PATCH_TASK,
    &PATCH_ENABLED,
    &PATCH_MISFIRE_POLICY,
];
const NULL_KIND: &str = "null_not_allowed";
const NULL_MSG: &str = "This field may be left out but not set to null";

/// Longest schedule name, in characters.
const MAX_NAME: usize = 200;

fn timezone_names() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect()
}

fn misfire_names() -> Vec<&'static str> {
    vec![
        MisfirePolicy::RunOnce.as_str(),
        MisfirePolicy::Skip.as_str(),
    ]
}

fn names(fields: &[&dyn Documented]) -> Vec<&'static str> {
    fields.iter().map(|f| f.name()).collect()
}

/// A create body: `name`, `cron`, `task` and `task.type` are required; the rest take their
/// defaults (`default_attempts` for the template's `max_attempts`). Slow for an expression
/// that never matches (see [`CronSpec::check_fires`]).
pub fn new_schedule(
    body: &Map<String, Value>,
    default_attempts: i32,
) -> Result<NewSchedule, Vec<FieldError>> {
    let mut errors = extra_keys(body, &names(NEW_SCHEDULE));
    let mut fields = Fields::new(body);
    let name = fields.read_text(&NAME);
    let cron = fields.read_text(&CRON);
    let timezone = fields.string(TIMEZONE.name);
    let enabled = fields.read_bool(&ENABLED).unwrap_or(true);
    let policy = fields.read_choice(&MISFIRE_POLICY);
    let task = fields.read_object(&TASK);
    errors.extend(fields.finish().err().unwrap_or_default());
    errors.extend(nul_errors(body, &spec::stored_keys(NEW_SCHEDULE)));
    let policy = policy.and_then(MisfirePolicy::parse);
    let timezone = timezone.unwrap_or_else(|| DEFAULT_TIMEZONE.into());
    check_timing(cron.as_deref(), Some(&timezone), &mut errors);
    let template = match task.map(|task| new_template(&task, default_attempts)) {
        Some(Ok(template)) => Some(template),
        Some(Err(task_errors)) => {
            errors.extend(under_task(task_errors));
            None
        }
        None => None,
    };
    match (name, cron, template) {
        (Some(name), Some(cron), Some(task)) if errors.is_empty() => Ok(NewSchedule {
            name,
            cron: cron.trim().to_string(),
            timezone,
            task,
            enabled,
            misfire_policy: policy.unwrap_or_default(),
        }),
        _ => Err(errors),
    }
}

/// A PATCH body: only the keys present change. Null is refused for the schedule's own fields;
/// inside `task` it resets a field to its default (`type` excepted).
pub fn schedule_patch(
    body: &Map<String, Value>,
    default_attempts: i32,
) -> Result<SchedulePatch, Vec<FieldError>> {
    let mut errors = extra_keys(body, &names(SCHEDULE_PATCH));
    let mut fields = Fields::new(body);
    let name = fields.read_text(&PATCH_NAME);
    let cron = fields.read_text(&PATCH_CRON);
    let timezone = fields.string(PATCH_TIMEZONE.name);
    if body.get(PATCH_TIMEZONE.name) == Some(&Value::Null) {
        invalid(&mut errors, PATCH_TIMEZONE.name, NULL_KIND, NULL_MSG);
    }
    let enabled = fields.read_bool(&PATCH_ENABLED);
    let policy = fields.read_choice(&PATCH_MISFIRE_POLICY);
    let task = fields.read_object(&PATCH_TASK);
    errors.extend(fields.finish().err().unwrap_or_default());
    errors.extend(nul_errors(body, &spec::stored_keys(SCHEDULE_PATCH)));
    let misfire_policy = policy.and_then(MisfirePolicy::parse);
    if cron.is_some() || timezone.is_some() {
        check_timing(cron.as_deref(), timezone.as_deref(), &mut errors);
    }
    let task = match task.map(|task| template_patch(&task, default_attempts)) {
        Some(Ok(patch)) => patch,
        Some(Err(task_errors)) => {
            errors.extend(under_task(task_errors));
            TemplatePatch::default()
        }
        None => TemplatePatch::default(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SchedulePatch {
        name,
        cron: cron.map(|c| c.trim().to_string()),
        timezone,
        task,
        enabled,
        misfire_policy,
    })
}

fn extra_keys(object: &Map<String, Value>, allowed: &[&str]) -> Vec<FieldError> {
    object
        .keys()
        .filter(|key| !allowed.contains(&key.as_str()))
        .map(|key| {
            FieldError::new(
                vec![Value::from(key.as_str())],
                "extra_forbidden",
                "Extra inputs are not permitted",
            )
        })
        .collect()
}

fn under_task(errors: Vec<FieldError>) -> impl Iterator<Item = FieldError> {
    errors.into_iter().map(|e| e.under("task"))
}

fn invalid(errors: &mut Vec<FieldError>, key: &str, kind: &'static str, msg: impl Into<String>) {
    errors.push(FieldError::new(vec![Value::from(key)], kind, msg));
}

/// Checks the expression and the zone given, and that a readable expression matches a date to
/// come (in the zone when it reads, else in UTC: a date that never comes never comes anywhere).
fn check_timing(cron: Option<&str>, timezone: Option<&str>, errors: &mut Vec<FieldError>) {
    let mut zone = DEFAULT_TIMEZONE;
    match timezone.map(|name| (name, parse_timezone(name))) {
        Some((_, Err(err))) => push_spec_error(&err, errors),
        Some((name, Ok(_))) => zone = name,
        None => {}
    }
    let Some(cron) = cron else {
        return;
    };
    let checked = CronSpec::parse(cron, zone).and_then(|spec| spec.check_fires(Utc::now()));
    if let Err(err) = checked {
        push_spec_error(&err, errors);
    }
}

fn push_spec_error(err: &SpecError, errors: &mut Vec<FieldError>) {
    match err {
        SpecError::Cron(msg) => invalid(errors, "cron", "cron_expression", msg.clone()),
        SpecError::Timezone(msg) => invalid(errors, "timezone", "timezone", msg.clone()),
    }
}

/// A template from a create body's `task` (errors relative to it).
fn new_template(
    task: &Map<String, Value>,
    default_attempts: i32,
) -> Result<TaskTemplate, Vec<FieldError>> {
    let mut errors = extra_keys(task, &names(NEW_TEMPLATE));
    let mut fields = Fields::new(task);
    let task_type = fields.read_text(&tasks::TYPE);
    let given = TemplatePatch {
        task_type: None,
        params: fields.read_object(&tasks::PARAMS),
        description: fields.read_text(&tasks::DESCRIPTION),
        domain: Some(fields.read_text(&tasks::DOMAIN)),
        queue: fields.read_text(&tasks::QUEUE),
        priority: priority(&mut fields),
        max_attempts: max_attempts(&mut fields),
        timeout_seconds: Some(fields.read_number(&tasks::TIMEOUT_SECONDS)),
        drift_score: fields.read_number(&tasks::DRIFT_SCORE),
    };
    errors.extend(fields.finish().err().unwrap_or_default());
    check_template(task, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut template = TaskTemplate {
        max_attempts: default_attempts,
        ..TaskTemplate::of_type(task_type.unwrap_or_default())
    };
    given.apply(&mut template);
    Ok(template)
}

/// Changes to a template from a PATCH body's `task` (errors relative to it).
fn template_patch(
    task: &Map<String, Value>,
    default_attempts: i32,
) -> Result<TemplatePatch, Vec<FieldError>> {
    let mut errors = extra_keys(task, &names(TEMPLATE_PATCH));
    let mut fields = Fields::new(task);
    let given = |key: &str| task.contains_key(key);
    let reset = |key: &str| task.get(key) == Some(&Value::Null);
    let patch = TemplatePatch {
        task_type: fields.read_text(&PATCH_TYPE),
        params: fields
            .read_object(&tasks::PARAMS)
            .or_else(|| reset("params").then(Map::new)),
        description: fields
            .read_text(&tasks::DESCRIPTION)
            .or_else(|| reset("description").then(String::new)),
        domain: given("domain").then(|| fields.read_text(&tasks::DOMAIN)),
        queue: fields
            .read_text(&tasks::QUEUE)
            .or_else(|| reset("queue").then(|| DEFAULT_QUEUE.into())),
        priority: priority(&mut fields).or_else(|| reset("priority").then_some(0)),
        max_attempts: max_attempts(&mut fields)
            .or_else(|| reset("max_attempts").then_some(default_attempts)),
        timeout_seconds: given("timeout_seconds")
            .then(|| fields.read_number(&tasks::TIMEOUT_SECONDS)),
        drift_score: fields
            .read_number(&tasks::DRIFT_SCORE)
            .or_else(|| reset("drift_score").then_some(0.0)),
    };
    errors.extend(fields.finish().err().unwrap_or_default());
    check_template(task, &mut errors);
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(errors)
    }
}

fn priority(fields: &mut Fields) -> Option<i32> {
    Some(fields.read_integer(&tasks::PRIORITY)? as i32)
}

fn max_attempts(fields: &mut Fields) -> Option<i32> {
    Some(fields.read_integer(&tasks::MAX_ATTEMPTS)? as i32)
}

/// What the field readers do not check: NUL characters anywhere inside.
fn check_template(task: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    errors.extend(nul_errors(task, &spec::stored_keys(NEW_TEMPLATE)));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn locations(errors: &[FieldError]) -> Vec<(String, &'static str)> {
        errors
            .iter()
            .map(|e| {
                let loc: Vec<String> = e
                    .loc
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect();
                (loc.join("."), e.kind)
            })
            .collect()
    }

    #[test]
    fn a_minimal_schedule_takes_every_default() {
        let schedule = new_schedule(
            &body(json!({"name": "tick", "cron": " * * * * * ", "task": {"type": "noop"}})),
            5,
        )
        .unwrap();
        assert_eq!(
            schedule,
            NewSchedule {
                name: "tick".into(),
                cron: "* * * * *".into(),
                timezone: "UTC".into(),
                task: TaskTemplate {
                    max_attempts: 5,
                    ..TaskTemplate::of_type("noop")
                },
                enabled: true,
                misfire_policy: MisfirePolicy::RunOnce,
            }
        );
    }

    #[test]
    fn every_problem_of_a_create_body_is_named_by_its_field() {
        let errors = new_schedule(
            &body(json!({
                "cron": "61 * * * *", "timezone": "Mars/Base", "enabled": "yes",
                "misfire_policy": "later", "colour": "blue",
                "task": {"params": [], "queue": "no spaces", "priority": 1.5, "timeout_seconds": 0,
                         "retries": 3}
            })),
            3,
        )
        .unwrap_err();
        let mut found = locations(&errors);
        found.sort();
        assert_eq!(
            found,
            [
                ("colour".into(), "extra_forbidden"),
                ("cron".into(), "cron_expression"),
                ("enabled".into(), "bool_type"),
                ("misfire_policy".into(), "enum"),
                ("name".into(), "missing"),
                ("task.params".into(), "dict_type"),
                ("task.priority".into(), "int_type"),
                ("task.queue".into(), "queue_name"),
                ("task.retries".into(), "extra_forbidden"),
                ("task.timeout_seconds".into(), "greater_than"),
                ("task.type".into(), "missing"),
                ("timezone".into(), "timezone"),
            ]
        );
    }

    #[test]
    fn a_create_body_needs_a_task_and_an_expression_that_ever_fires() {
        let errors =
            new_schedule(&body(json!({"name": "x", "cron": "0 0 30 2 *"})), 3).unwrap_err();
        assert_eq!(
            locations(&errors),
            [
                ("task".into(), "missing"),
                ("cron".into(), "cron_expression")
            ]
        );
        assert!(errors[1].msg.contains("never matches"), "{}", errors[1].msg);
    }

    #[test]
    fn an_expression_that_never_matches_is_named_even_beside_a_bad_zone() {
        let errors = schedule_patch(
            &body(json!({"cron": "0 0 31 4 *", "timezone": "Europe/Zurch"})),
            3,
        )
        .unwrap_err();
        assert_eq!(
            locations(&errors),
            [
                ("timezone".into(), "timezone"),
                ("cron".into(), "cron_expression")
            ]
        );
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_nulls_in_the_template_reset() {
        let patch = schedule_patch(
            &body(
                json!({"enabled": false, "task": {"priority": null, "domain": null, "queue": "q"}}),
            ),
            3,
        )
        .unwrap();
        assert_eq!(
            patch,
            SchedulePatch {
                enabled: Some(false),
                task: TemplatePatch {
                    priority: Some(0),
                    domain: Some(None),
                    queue: Some("q".into()),
                    ..TemplatePatch::default()
                },
                ..SchedulePatch::default()
            }
        );
        assert!(schedule_patch(&body(json!({})), 3).unwrap().is_empty());
    }

    #[test]
    fn a_patch_refuses_nulls_unknown_keys_and_a_bad_zone() {
        let errors = schedule_patch(
            &body(json!({"name": null, "timezone": "Nowhere", "id": "x", "task": {"type": null}})),
            3,
        )
        .unwrap_err();
        let mut found = locations(&errors);
        found.sort();
        assert_eq!(
            found,
            [
                ("id".into(), "extra_forbidden"),
                ("name".into(), "null_not_allowed"),
                ("task.type".into(), "string_type"),
                ("timezone".into(), "timezone"),
            ]
        );
    }
}
