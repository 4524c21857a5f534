//! Validation of schedule bodies (create and PATCH): every problem is reported at once, located
//! relative to the body (`["name"]`, `["task", "queue"]`), and keys a schedule does not have
//! are refused rather than ignored, so that a misspelt field never silently does nothing.

use chrono::Utc;
use serde_json::{Map, Value};

use crate::{
    model::{
        MisfirePolicy, NewSchedule, SchedulePatch, TaskTemplate, TemplatePatch,
        schedule::{CronSpec, DEFAULT_TIMEZONE, SpecError, parse_timezone},
        task::{DEFAULT_QUEUE, valid_queue_name},
    },
    validate::{FieldError, Fields, nul_errors},
};

/// The keys of a schedule body.
const SCHEDULE_KEYS: [&str; 6] = [
    "name",
    "cron",
    "timezone",
    "task",
    "enabled",
    "misfire_policy",
];
/// The keys of a task template.
const TEMPLATE_KEYS: [&str; 9] = [
    "type",
    "params",
    "description",
    "domain",
    "queue",
    "priority",
    "max_attempts",
    "timeout_seconds",
    "drift_score",
];
/// The stored text of a schedule, which PostgreSQL cannot hold with U+0000 in it.
const STORED_KEYS: [&str; 3] = ["name", "cron", "timezone"];
/// The stored text of a template.
const STORED_TEMPLATE_KEYS: [&str; 5] = ["type", "description", "domain", "params", "queue"];

/// Longest schedule name, in bytes.
const MAX_NAME: usize = 200;

/// A create body: `name`, `cron`, `task` and `task.type` are required; the rest take their
/// defaults (`default_attempts` for the template's `max_attempts`). Slow for an expression
/// that never matches (see [`CronSpec::check_fires`]).
pub fn new_schedule(
    body: &Map<String, Value>,
    default_attempts: i32,
) -> Result<NewSchedule, Vec<FieldError>> {
    let mut errors = extra_keys(body, &SCHEDULE_KEYS);
    let mut fields = Fields::new(body);
    let name = fields.required_string("name", true);
    let cron = fields.required_string("cron", true);
    let timezone = fields.string("timezone");
    let enabled = fields.boolean("enabled").unwrap_or(true);
    let policy = fields.string("misfire_policy");
    let task = fields.object("task");
    errors.extend(fields.finish().err().unwrap_or_default());
    errors.extend(nul_errors(body, &STORED_KEYS));
    if body.get("task").is_none_or(Value::is_null) {
        invalid(&mut errors, "task", "missing", "Field required");
    }
    let policy = misfire_policy(policy, &mut errors);
    check_name(name.as_deref(), &mut errors);
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
    let mut errors = extra_keys(body, &SCHEDULE_KEYS);
    for key in SCHEDULE_KEYS {
        if body.get(key) == Some(&Value::Null) {
            invalid(
                &mut errors,
                key,
                "null_not_allowed",
                "This field may be left out but not set to null",
            );
        }
    }
    let mut fields = Fields::new(body);
    let name = fields.string("name");
    let cron = fields.string("cron");
    let timezone = fields.string("timezone");
    let enabled = fields.boolean("enabled");
    let policy = fields.string("misfire_policy");
    let task = fields.object("task");
    errors.extend(fields.finish().err().unwrap_or_default());
    errors.extend(nul_errors(body, &STORED_KEYS));
    let misfire_policy = misfire_policy(policy, &mut errors);
    if name.is_some() {
        check_name(name.as_deref(), &mut errors);
    }
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

fn misfire_policy(text: Option<String>, errors: &mut Vec<FieldError>) -> Option<MisfirePolicy> {
    let policy = MisfirePolicy::parse(text.as_deref()?);
    if policy.is_none() {
        invalid(
            errors,
            "misfire_policy",
            "enum",
            "Input should be 'run_once' or 'skip'",
        );
    }
    policy
}

fn check_name(name: Option<&str>, errors: &mut Vec<FieldError>) {
    match name {
        Some("") => invalid(
            errors,
            "name",
            "string_too_short",
            "String should have at least 1 character",
        ),
        Some(name) if name.len() > MAX_NAME => invalid(
            errors,
            "name",
            "string_too_long",
            format!("A schedule name is at most {MAX_NAME} bytes"),
        ),
        _ => {}
    }
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
    let mut errors = extra_keys(task, &TEMPLATE_KEYS);
    let mut fields = Fields::new(task);
    let task_type = fields.required_string("type", true);
    let given = TemplatePatch {
        task_type: None,
        params: fields.object("params"),
        description: fields.string("description"),
        domain: Some(fields.string("domain")),
        queue: fields.string("queue"),
        priority: priority(&mut fields),
        max_attempts: max_attempts(&mut fields),
        timeout_seconds: Some(fields.number("timeout_seconds")),
        drift_score: fields.number("drift_score"),
    };
    errors.extend(fields.finish().err().unwrap_or_default());
    check_template(task, &given, &mut errors);
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
    let mut errors = extra_keys(task, &TEMPLATE_KEYS);
    let mut fields = Fields::new(task);
    let given = |key: &str| task.contains_key(key);
    let reset = |key: &str| task.get(key) == Some(&Value::Null);
    let patch = TemplatePatch {
        task_type: given("type")
            .then(|| fields.required_string("type", true))
            .flatten(),
        params: fields
            .object("params")
            .or_else(|| reset("params").then(Map::new)),
        description: fields
            .string("description")
            .or_else(|| reset("description").then(String::new)),
        domain: given("domain").then(|| fields.string("domain")),
        queue: fields
            .string("queue")
            .or_else(|| reset("queue").then(|| DEFAULT_QUEUE.into())),
        priority: priority(&mut fields).or_else(|| reset("priority").then_some(0)),
        max_attempts: max_attempts(&mut fields)
            .or_else(|| reset("max_attempts").then_some(default_attempts)),
        timeout_seconds: given("timeout_seconds").then(|| fields.number("timeout_seconds")),
        drift_score: fields
            .number("drift_score")
            .or_else(|| reset("drift_score").then_some(0.0)),
    };
    errors.extend(fields.finish().err().unwrap_or_default());
    check_template(task, &patch, &mut errors);
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(errors)
    }
}

fn priority(fields: &mut Fields) -> Option<i32> {
    let priority = fields.integer_in("priority", -1_000_000, 1_000_000)?;
    Some(priority as i32)
}

fn max_attempts(fields: &mut Fields) -> Option<i32> {
    Some(fields.integer_in("max_attempts", 1, 1000)? as i32)
}

/// What the field readers do not check: NUL characters, queue names, positive timeouts.
fn check_template(
    task: &Map<String, Value>,
    template: &TemplatePatch,
    errors: &mut Vec<FieldError>,
) {
    errors.extend(nul_errors(task, &STORED_TEMPLATE_KEYS));
    if template
        .queue
        .as_deref()
        .is_some_and(|q| !valid_queue_name(q))
    {
        invalid(
            errors,
            "queue",
            "queue_name",
            "A queue name is 1 to 100 letters, digits, '_', '-', '.' or ':'",
        );
    }
    if template.timeout_seconds.flatten().is_some_and(|t| t <= 0.0) {
        invalid(
            errors,
            "timeout_seconds",
            "greater_than",
            "Input should be greater than 0",
        );
    }
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
