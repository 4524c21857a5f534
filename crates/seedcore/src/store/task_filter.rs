//! Which tasks a list or a bulk action reads: the filters both share, so that "all N matching"
//! acts on exactly the tasks the list shows, and the `params.<path>=<value>` filter's reading.
//!
//! Invariants:
//! - a parameter filter's path is one or more non-empty object keys under `params`, and its
//!   value is a JSON scalar (string, number, boolean, null): it matches when the value at that
//!   path equals it, numbers by value (42 = 42.0) and never across types ("42" ≠ 42);
//! - the text `path=value` ([`ParamFilter::parse`]) is the one form both the list's query
//!   string and an action's stored filter use.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// The filters of the task list and of bulk actions other than the status, which each reads
/// in its own way (one status for the list, the statuses an action applies to for actions).
/// Every given filter must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    /// Only tasks of this type.
    pub task_type: Option<String>,
    /// Only tasks in this queue.
    pub queue: Option<String>,
    /// Only tasks in this domain.
    pub domain: Option<String>,
    /// Only tasks of this workflow.
    pub workflow_id: Option<Uuid>,
    /// Only the tasks that depend on this one (its children).
    pub parent: Option<Uuid>,
    /// Only tasks created strictly after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Only tasks created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the parameters as JSON text or of the error; literal.
    pub q: Option<String>,
    /// Each must match.
    pub params: Vec<ParamFilter>,
}

impl TaskFilter {
    /// Whether it uses a filter the original service's list did not have.
    pub fn is_extended(&self) -> bool {
        self.queue.is_some()
            || self.workflow_id.is_some()
            || self.parent.is_some()
            || self.created_after.is_some()
            || self.created_before.is_some()
            || self.q.is_some()
            || !self.params.is_empty()
    }
}

/// `params.<path>=<value>`: the value at `path` under the task's parameters equals `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamFilter {
    /// Object keys, outermost first; never empty, no key empty.
    pub path: Vec<String>,
    /// A JSON scalar.
    pub value: Value,
}

impl ParamFilter {
    /// The filter `path=value` stands for, None when the path is malformed or either part
    /// holds U+0000 (which stored JSON cannot hold).
    pub fn parse(text: &str) -> Option<ParamFilter> {
        let (path, raw) = text.split_once('=')?;
        ParamFilter::new(path, raw)
    }

    /// The filter on the dot-separated `path` with the value `raw`: JSON when it parses as a
    /// JSON scalar, else the text itself as a string.
    pub fn new(path: &str, raw: &str) -> Option<ParamFilter> {
        if path.contains('\0') || raw.contains('\0') {
            return None;
        }
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        if path.iter().any(|key| key.is_empty() || key.contains('=')) {
            return None;
        }
        Some(ParamFilter {
            path,
            value: scalar(raw),
        })
    }

    /// The `path=value` text it was read from (the same filter, written back).
    pub fn to_text(&self) -> String {
        format!("{}={}", self.path.join("."), self.value)
    }

    /// The smallest object holding the value at the path: what a task's parameters contain
    /// when it matches.
    pub fn contained(&self) -> Value {
        self.path
            .iter()
            .rev()
            .fold(self.value.clone(), |inner, key| {
                Value::Object([(key.clone(), inner)].into_iter().collect())
            })
    }
}

/// `raw` as JSON when it is a JSON scalar, else as a string.
fn scalar(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ (Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null)) => value,
        _ => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_json_scalars_when_they_parse_as_one_and_strings_otherwise() {
        let value = |text: &str| ParamFilter::parse(text).unwrap().value;
        assert_eq!(value("a=42"), json!(42));
        assert_eq!(value("a=4.5"), json!(4.5));
        assert_eq!(value("a=true"), json!(true));
        assert_eq!(value("a=null"), json!(null));
        assert_eq!(value("a=\"42\""), json!("42"));
        assert_eq!(value("a=gold"), json!("gold"));
        assert_eq!(value("a={\"b\":1}"), json!("{\"b\":1}"));
        assert_eq!(value("a=x=y"), json!("x=y"));
    }

    #[test]
    fn a_path_is_non_empty_keys_separated_by_dots() {
        let parsed = ParamFilter::parse("customer.tier=gold").unwrap();
        assert_eq!(parsed.path, ["customer", "tier"]);
        assert_eq!(parsed.contained(), json!({"customer": {"tier": "gold"}}));
        for bad in ["=1", ".a=1", "a.=1", "a..b=1", "no_value", "a\0=1", "a=\0"] {
            assert_eq!(ParamFilter::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_filter_writes_back_to_the_text_it_was_read_from() {
        let parsed = ParamFilter::parse("customer.tier=\"42\"").unwrap();
        assert_eq!(ParamFilter::parse(&parsed.to_text()), Some(parsed));
    }
}
