//! The file-based system's data (`tasks.json`, `facts.json`) read into seedcore's model, for
//! `seedcore db import-legacy`.
//!
//! Invariants: every record either maps completely or is reported with its position and why;
//! ids are kept (so a second import finds them present and changes nothing); `metadata`
//! becomes `meta_data`; epoch seconds become timestamps; a task that was `running` when the old
//! system stopped is decided explicitly (failed as interrupted, or queued again on request).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::{Fact, TaskStatus};

/// A task as the file-based system kept it, mapped.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyTask {
    /// The old id, kept.
    pub id: Uuid,
    /// The old `type`.
    pub task_type: String,
    /// Empty when the old record had none.
    pub description: String,
    /// Empty when the old record had none.
    pub params: Map<String, Value>,
    /// The old status; a `running` one is already failed or queued, as [`RunningTasks`] says.
    pub status: TaskStatus,
    /// The old result: an object as it was, any other value wrapped as `{"value": …}`.
    pub result: Option<Value>,
    /// The old error, or [`INTERRUPTED`] for a running task that was failed.
    pub error: Option<String>,
    /// Facts the task refers to.
    pub attached_fact_ids: Vec<Uuid>,
    /// From the old epoch seconds.
    pub created_at: DateTime<Utc>,
    /// From the old epoch seconds; `created_at` when missing.
    pub updated_at: DateTime<Utc>,
}

/// A record that could not be mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// "task" or "fact".
    pub kind: &'static str,
    /// Position in the file's list, from 0.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{}: {}", self.kind, self.index, self.reason)
    }
}

/// What to do with tasks that were `running` in the old system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunningTasks {
    /// They become `failed`, with an error saying they were interrupted.
    Fail,
    /// They are queued to run again.
    Requeue,
}

/// The error given to tasks that were `running` and are imported as failed.
pub const INTERRUPTED: &str =
    "interrupted: the task was running when the file-based system stopped";

/// The records of a file's list (`{"tasks": [...]}` or `{"facts": [...]}`); a file that is not
/// such an object is an error for the whole file.
pub fn records(document: &Value, key: &str) -> Result<Vec<Value>, String> {
    match document.get(key) {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(format!("\"{key}\" should be a list")),
        None => Err(format!("expected an object with a \"{key}\" list")),
    }
}

/// Maps one record of `facts.json` (at `index`) to a fact.
pub fn fact(index: usize, record: &Value) -> Result<Fact, Rejected> {
    let reject = |reason: String| Rejected {
        kind: "fact",
        index,
        reason,
    };
    let object = record
        .as_object()
        .ok_or_else(|| reject("not an object".into()))?;
    let text = match object.get("text") {
        Some(Value::String(text)) => text.clone(),
        Some(_) => return Err(reject("text is not a string".into())),
        None => return Err(reject("text is missing".into())),
    };
    let created_at = epoch(object, "created_at").map_err(reject)?;
    Ok(Fact {
        id: id(object).map_err(reject)?,
        text,
        tags: strings(object, "tags").map_err(reject)?,
        meta_data: Value::Object(optional_object(object, "metadata").map_err(reject)?),
        updated_at: optional_epoch(object, "updated_at")
            .map_err(reject)?
            .unwrap_or(created_at),
        created_at,
    })
    .and_then(|fact| {
        let tags = Value::from(fact.tags.clone());
        refuse_nul(&fact.text, &fact.meta_data)
            .and_then(|_| refuse_nul("", &tags))
            .map(|_| fact)
            .map_err(reject)
    })
}

/// Maps one record of `tasks.json` (at `index`) to a task, deciding a `running` one as asked.
pub fn task(index: usize, record: &Value, running: RunningTasks) -> Result<LegacyTask, Rejected> {
    let reject = |reason: String| Rejected {
        kind: "task",
        index,
        reason,
    };
    let object = record
        .as_object()
        .ok_or_else(|| reject("not an object".into()))?;
    let task_type = match object.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        Some(_) => return Err(reject("type is not a non-empty string".into())),
        None => return Err(reject("type is missing".into())),
    };
    let (status, mut error) = status(object).map_err(reject)?;
    let status = match (status, running) {
        (TaskStatus::Running, RunningTasks::Fail) => {
            error = Some(INTERRUPTED.into());
            TaskStatus::Failed
        }
        (TaskStatus::Running, RunningTasks::Requeue) => TaskStatus::Queued,
        (other, _) => other,
    };
    let created_at = epoch(object, "created_at").map_err(reject)?;
    let task = LegacyTask {
        id: id(object).map_err(reject)?,
        task_type,
        description: optional_string(object, "description")
            .map_err(reject)?
            .unwrap_or_default(),
        params: optional_object(object, "params").map_err(reject)?,
        result: result(object),
        error,
        attached_fact_ids: fact_ids(object).map_err(reject)?,
        updated_at: optional_epoch(object, "updated_at")
            .map_err(reject)?
            .unwrap_or(created_at),
        created_at,
        status,
    };
    let stored = [
        Value::String(task.task_type.clone()),
        Value::String(task.description.clone()),
        Value::Object(task.params.clone()),
        task.result.clone().unwrap_or_default(),
        Value::from(task.error.clone()),
    ];
    stored
        .iter()
        .try_for_each(|v| refuse_nul("", v))
        .map_err(reject)?;
    Ok(task)
}

fn id(object: &Map<String, Value>) -> Result<Uuid, String> {
    match object.get("id") {
        Some(Value::String(raw)) => {
            Uuid::try_parse(raw).map_err(|_| format!("id '{raw}' is not a UUID"))
        }
        Some(_) => Err("id is not a string".into()),
        None => Err("id is missing".into()),
    }
}

fn status(object: &Map<String, Value>) -> Result<(TaskStatus, Option<String>), String> {
    let error = optional_string(object, "error")?;
    let status = match object.get("status").and_then(Value::as_str) {
        Some("created") => TaskStatus::Created,
        Some("running") => TaskStatus::Running,
        Some("completed") => TaskStatus::Completed,
        Some("failed") => TaskStatus::Failed,
        Some(other) => {
            return Err(format!(
                "status '{other}' is not one of created, running, completed, failed"
            ));
        }
        None => return Err("status is missing or not a string".into()),
    };
    Ok((status, error))
}

/// The old result as an object: objects are kept, any other value is wrapped.
fn result(object: &Map<String, Value>) -> Option<Value> {
    match object.get("result") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(Value::Object(map.clone())),
        Some(other) => Some(serde_json::json!({ "value": other })),
    }
}

fn fact_ids(object: &Map<String, Value>) -> Result<Vec<Uuid>, String> {
    strings(object, "attached_fact_ids")?
        .iter()
        .map(|raw| {
            Uuid::try_parse(raw).map_err(|_| format!("attached fact id '{raw}' is not a UUID"))
        })
        .collect()
}

fn epoch(object: &Map<String, Value>, key: &str) -> Result<DateTime<Utc>, String> {
    optional_epoch(object, key)?.ok_or_else(|| format!("{key} is missing"))
}

fn optional_epoch(object: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let seconds = value
                .as_f64()
                .ok_or_else(|| format!("{key} is not a number of seconds since the epoch"))?;
            let micros = (seconds * 1e6).round();
            if !micros.is_finite() || micros.abs() > 8.0e18 {
                return Err(format!("{key} {seconds} is out of range"));
            }
            DateTime::from_timestamp_micros(micros as i64)
                .filter(|at| (1..=9999).contains(&chrono::Datelike::year(at)))
                .map(Some)
                .ok_or_else(|| format!("{key} {seconds} is out of range (years 1 to 9999)"))
        }
    }
}

fn optional_string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} is not a string")),
    }
}

fn optional_object(object: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(format!("{key} is not an object")),
    }
}

fn strings(object: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key} holds a value that is not a string"))
            })
            .collect(),
        Some(_) => Err(format!("{key} is not a list")),
    }
}

/// PostgreSQL cannot store U+0000 in text or jsonb: such a record is rejected, not half-written.
fn refuse_nul(text: &str, value: &Value) -> Result<(), String> {
    if text.contains('\0') || value.to_string().contains("\\u0000") {
        return Err("holds a NUL character (\\u0000), which cannot be stored".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn a_fact_keeps_its_id_and_maps_metadata_and_epochs() {
        let fact = fact(
            0,
            &json!({"id": ID, "text": "t", "tags": ["a"], "metadata": {"k": 1},
                    "created_at": 1700000000.25, "updated_at": 1700000001.5}),
        )
        .unwrap();
        assert_eq!(fact.id.to_string(), ID);
        assert_eq!(fact.meta_data, json!({"k": 1}));
        assert_eq!(fact.created_at.timestamp_micros(), 1_700_000_000_250_000);
        assert_eq!(fact.updated_at.timestamp_micros(), 1_700_000_001_500_000);
    }

    #[test]
    fn a_running_task_fails_as_interrupted_unless_requeued() {
        let record = json!({"id": ID, "type": "analysis", "status": "running", "created_at": 1.0,
                            "attached_fact_ids": [ID]});
        let failed = task(3, &record, RunningTasks::Fail).unwrap();
        assert_eq!(
            (failed.status, failed.error.as_deref()),
            (TaskStatus::Failed, Some(INTERRUPTED))
        );
        assert_eq!(failed.attached_fact_ids.len(), 1);
        let queued = task(3, &record, RunningTasks::Requeue).unwrap();
        assert_eq!((queued.status, queued.error), (TaskStatus::Queued, None));
    }

    #[test]
    fn each_kind_of_malformed_record_says_what_is_wrong_and_where() {
        let cases = [
            (json!([]), "not an object"),
            (
                json!({"type": "t", "status": "created", "created_at": 1}),
                "id is missing",
            ),
            (
                json!({"id": "nope", "type": "t", "status": "created", "created_at": 1}),
                "id 'nope' is not a UUID",
            ),
            (
                json!({"id": ID, "status": "created", "created_at": 1}),
                "type is missing",
            ),
            (
                json!({"id": ID, "type": "t", "status": "paused", "created_at": 1}),
                "status 'paused'",
            ),
            (
                json!({"id": ID, "type": "t", "status": "created"}),
                "created_at is missing",
            ),
            (
                json!({"id": ID, "type": "t", "status": "created", "created_at": "x"}),
                "created_at is not a number",
            ),
            (
                json!({"id": ID, "type": "t", "status": "created", "created_at": 1, "params": [1]}),
                "params is not an object",
            ),
            (
                json!({"id": ID, "type": "t", "status": "created", "created_at": 1, "attached_fact_ids": ["x"]}),
                "attached fact id 'x'",
            ),
        ];
        for (record, expected) in cases {
            let rejected = task(7, &record, RunningTasks::Fail).unwrap_err();
            assert_eq!((rejected.kind, rejected.index), ("task", 7));
            assert!(
                rejected.reason.contains(expected),
                "{record}: {}",
                rejected.reason
            );
        }
        let rejected = fact(2, &json!({"id": ID, "created_at": 1})).unwrap_err();
        assert_eq!(rejected.to_string(), "fact #2: text is missing");
    }

    #[test]
    fn a_file_must_hold_its_list() {
        assert_eq!(
            records(&json!({"facts": [1, 2]}), "facts").unwrap().len(),
            2
        );
        assert!(records(&json!({"facts": {}}), "facts").is_err());
        assert!(records(&json!([]), "tasks").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::validate::arbitrary::{edited, json_value, record};
        use serde_json::json;

        const FACT_KEYS: &[&str] = &["id", "text", "tags", "metadata", "created_at", "updated_at"];
        const TASK_KEYS: &[&str] = &[
            "id",
            "type",
            "description",
            "params",
            "status",
            "result",
            "error",
            "attached_fact_ids",
            "created_at",
            "updated_at",
        ];

        fn holds_nul(value: &Value) -> bool {
            value.to_string().contains("\\u0000")
        }

        /// Both stores hold and order timestamps of years 1 to 9999.
        fn storable(at: DateTime<Utc>) -> bool {
            (1..=9999).contains(&chrono::Datelike::year(&at))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_fact_record_maps_to_a_storable_fact_or_is_rejected_with_its_position(
                value in prop_oneof![
                    3 => edited(
                        json!({"id": ID, "text": "t", "tags": ["a"], "created_at": 1.7e9}),
                        FACT_KEYS,
                    ),
                    1 => record(FACT_KEYS),
                    1 => json_value(),
                ],
                index in 0usize..1000,
            ) {
                match fact(index, &value) {
                    Ok(fact) => {
                        prop_assert!(!fact.text.contains('\0'));
                        prop_assert!(!fact.tags.iter().any(|t| t.contains('\0')));
                        prop_assert!(!holds_nul(&fact.meta_data));
                        prop_assert!(storable(fact.created_at) && storable(fact.updated_at));
                    }
                    Err(rejected) => {
                        prop_assert_eq!((rejected.kind, rejected.index), ("fact", index));
                        prop_assert!(!rejected.reason.is_empty());
                    }
                }
            }

            #[test]
            fn any_task_record_maps_to_a_storable_task_or_is_rejected_with_its_position(
                value in prop_oneof![
                    3 => edited(
                        json!({"id": ID, "type": "echo", "status": "running", "created_at": 1.7e9}),
                        TASK_KEYS,
                    ),
                    1 => record(TASK_KEYS),
                    1 => json_value(),
                ],
                index in 0usize..1000,
                requeue in any::<bool>(),
            ) {
                let running = if requeue { RunningTasks::Requeue } else { RunningTasks::Fail };
                match task(index, &value, running) {
                    Ok(task) => {
                        prop_assert!(!task.task_type.is_empty());
                        let texts = [&task.task_type, &task.description];
                        prop_assert!(!texts.iter().any(|t| t.contains('\0')));
                        prop_assert!(!task.error.as_deref().is_some_and(|e| e.contains('\0')));
                        prop_assert!(!holds_nul(&Value::Object(task.params.clone())));
                        prop_assert!(!task.result.as_ref().is_some_and(holds_nul));
                        prop_assert!(task.result.as_ref().is_none_or(Value::is_object));
                        prop_assert_ne!(task.status, TaskStatus::Running);
                        prop_assert!(storable(task.created_at) && storable(task.updated_at));
                    }
                    Err(rejected) => {
                        prop_assert_eq!((rejected.kind, rejected.index), ("task", index));
                        prop_assert!(!rejected.reason.is_empty());
                    }
                }
            }

            #[test]
            fn a_file_is_its_list_or_refused_as_a_whole(value in json_value()) {
                match records(&value, "tasks") {
                    Ok(items) => prop_assert_eq!(Some(&items), value["tasks"].as_array()),
                    Err(reason) => prop_assert!(reason.contains("tasks")),
                }
            }
        }
    }
}
