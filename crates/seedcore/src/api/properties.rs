//! Property tests of the body validators, run directly: any JSON object given as a task,
//! fact, fact update or schedule body is either taken (and then holds to every cap) or refused
//! with errors located at a key of the body; none panics.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{schedule_body, tasks::new_task_fields};
use crate::validate::{
    self, FieldError,
    arbitrary::{edited, object},
    limits::{self, DEFAULT_LIMITS},
};

const TASK_KEYS: &[&str] = &[
    "type",
    "params",
    "description",
    "domain",
    "drift_score",
    "run_immediately",
    "max_attempts",
    "timeout_seconds",
    "attached_fact_ids",
    "queue",
    "priority",
    "run_at",
    "delay_seconds",
    "idempotency_key",
    "depends_on",
    "run_on_failure",
];
const FACT_KEYS: &[&str] = &["text", "tags", "meta_data"];
const SCHEDULE_KEYS: &[&str] = &[
    "name",
    "cron",
    "timezone",
    "enabled",
    "misfire_policy",
    "task",
];

fn as_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("an edited object stays an object"),
    }
}

fn a_task() -> impl Strategy<Value = Map<String, Value>> {
    prop_oneof![
        3 => edited(json!({"type": "echo", "params": {"a": 1}}), TASK_KEYS).prop_map(as_object),
        1 => object(TASK_KEYS),
    ]
}

fn a_fact() -> impl Strategy<Value = Map<String, Value>> {
    prop_oneof![
        3 => edited(json!({"text": "t", "tags": ["a"], "meta_data": {}}), FACT_KEYS)
            .prop_map(as_object),
        1 => object(FACT_KEYS),
    ]
}

fn a_schedule() -> impl Strategy<Value = Map<String, Value>> {
    let base = json!({"name": "n", "cron": "*/5 * * * *", "task": {"type": "echo"}});
    prop_oneof![
        3 => edited(base, SCHEDULE_KEYS).prop_map(as_object),
        1 => object(SCHEDULE_KEYS),
    ]
}

/// Every error names a key the body has, or one it lacks and needs.
fn located_in(errors: &[FieldError], body: &Map<String, Value>, required: &[&str]) -> bool {
    !errors.is_empty()
        && errors
            .iter()
            .all(|e| match e.loc.first().and_then(Value::as_str) {
                Some(key) => body.contains_key(key) || required.contains(&key),
                None => false,
            })
}

fn json_len(value: &impl serde::Serialize) -> usize {
    serde_json::to_string(value).unwrap().len()
}

fn no_nul(value: &Value) -> bool {
    !value.to_string().contains("\\u0000")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_task_body_is_taken_within_every_cap_or_refused_at_its_keys(body in a_task()) {
        match new_task_fields(&body, 3) {
            Ok(task) => {
                prop_assert!(!task.task_type.is_empty());
                prop_assert!(json_len(&task.params) <= DEFAULT_LIMITS.params_bytes);
                prop_assert!(task.attached_fact_ids.len() <= limits::MAX_ATTACHED_FACTS);
                prop_assert!(task.depends_on.len() <= limits::MAX_PARENTS);
                prop_assert!(task.timeout_seconds.is_none_or(|t| t > 0.0 && t <= limits::MAX_TIMEOUT_SECONDS));
                let horizon = chrono::Duration::days(limits::RUN_AT_HORIZON_DAYS + 1);
                prop_assert!(task.run_at.is_none_or(|at| (at - chrono::Utc::now()).abs() < horizon));
                prop_assert!((1..=1000).contains(&task.max_attempts));
                prop_assert!(task.drift_score.is_finite());
                let texts = json!([task.task_type, task.description, task.domain, task.queue, task.params]);
                prop_assert!(no_nul(&texts));
            }
            Err(errors) => prop_assert!(located_in(&errors, &body, &["type"]), "{errors:?}"),
        }
    }

    #[test]
    fn a_fact_body_is_taken_within_every_cap_or_refused_at_its_keys(body in a_fact()) {
        match validate::new_fact(&body) {
            Ok(fact) => {
                prop_assert!(fact.text.chars().count() <= DEFAULT_LIMITS.fact_text_chars);
                prop_assert!(fact.tags.len() <= limits::MAX_TAGS);
                prop_assert!(fact.tags.iter().all(|t| t.chars().count() <= limits::MAX_TAG_CHARS));
                prop_assert!(json_len(&fact.meta_data) <= DEFAULT_LIMITS.meta_data_bytes);
                prop_assert!(no_nul(&json!([fact.text, fact.tags, fact.meta_data])));
            }
            Err(errors) => prop_assert!(located_in(&errors, &body, &["text"]), "{errors:?}"),
        }
    }

    #[test]
    fn a_fact_update_changes_only_what_it_names_within_every_cap(body in a_fact()) {
        match validate::fact_patch(&body) {
            Ok(patch) => {
                prop_assert_eq!(patch.text.is_some(), body.contains_key("text"));
                prop_assert_eq!(patch.tags.is_some(), body.contains_key("tags"));
                prop_assert_eq!(patch.meta_data.is_some(), body.contains_key("meta_data"));
                let tags = patch.tags.unwrap_or_default();
                prop_assert!(tags.len() <= limits::MAX_TAGS);
                let meta = patch.meta_data.unwrap_or_default();
                prop_assert!(json_len(&meta) <= DEFAULT_LIMITS.meta_data_bytes);
            }
            Err(errors) => prop_assert!(located_in(&errors, &body, &[]), "{errors:?}"),
        }
    }

    #[test]
    fn a_schedule_body_is_taken_with_a_firing_expression_or_refused_at_its_keys(
        body in a_schedule(),
    ) {
        match schedule_body::new_schedule(&body, 3) {
            Ok(schedule) => {
                let spec = crate::model::schedule::CronSpec::parse(&schedule.cron, &schedule.timezone);
                prop_assert!(spec.is_ok());
                prop_assert!(json_len(&schedule.task.params) <= DEFAULT_LIMITS.params_bytes);
            }
            Err(errors) => {
                prop_assert!(located_in(&errors, &body, &["name", "cron", "task"]), "{errors:?}")
            }
        }
    }

    #[test]
    fn a_schedule_update_is_taken_or_refused_at_its_keys(body in a_schedule()) {
        if let Err(errors) = schedule_body::schedule_patch(&body, 3) {
            prop_assert!(located_in(&errors, &body, &[]), "{errors:?}");
        }
    }
}
