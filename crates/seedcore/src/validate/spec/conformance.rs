//! Checks for tests elsewhere: that a rendered schema's bounds are the ones its validator
//! enforces, and that a format's pattern gives the answers of its check.

use serde_json::{Map, Value, json};

use super::{Format, NUL_FREE};
use crate::validate::FieldError;

/// The properties of a body schema (an object, or the first part of an `allOf`).
fn properties(schema: &Value) -> &Map<String, Value> {
    let object = schema
        .get("allOf")
        .and_then(|parts| parts.get(0))
        .unwrap_or(schema);
    object["properties"].as_object().expect("a body schema")
}

/// Values just inside (true) and just outside (false) the bounds the schema states.
fn edge_values(schema: &Value) -> Vec<(Value, bool)> {
    let mut cases = Vec::new();
    let text = |n: usize| Value::from("é".repeat(n));
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let min = min as i64;
        cases.push((json!(min), true));
        if let Some(below) = min.checked_sub(1) {
            cases.push((json!(below), false));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let max = max as i64;
        cases.push((json!(max), true));
        if let Some(above) = max.checked_add(1).filter(|_| max < i64::MAX / 2) {
            cases.push((json!(above), false));
        }
    }
    if let Some(bound) = schema.get("exclusiveMinimum").and_then(Value::as_f64) {
        cases.push((json!(bound), false));
        cases.push((json!(bound + 0.5), true));
    }
    let patterned = schema.get("pattern").is_some_and(|p| p != NUL_FREE);
    if !patterned {
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            cases.push((text(min as usize), true));
            cases.push((text(min as usize - 1), false));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            cases.push((text(max as usize), true));
            cases.push((text(max as usize + 1), false));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        cases.extend(values.iter().map(|v| (v.clone(), true)));
        cases.push((json!("no such value"), false));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
        let item = || json!(uuid::Uuid::new_v4().to_string());
        cases.push((Value::Array((0..max).map(|_| item()).collect()), true));
        cases.push((Value::Array((0..=max).map(|_| item()).collect()), false));
    }
    if schema.get("type") == Some(&json!("null")) {
        cases.push((Value::Null, true));
        cases.push((json!("anything"), false));
    }
    cases
}

/// Sends each top-level field of `schema` its edge values, on top of the valid `base`, and
/// asserts that `validate` refuses exactly the values outside the stated bounds, naming the
/// field. Returns how many cases were tried, so a caller can see that it tried some.
pub fn assert_bounds_enforced(
    schema: &Value,
    base: &Map<String, Value>,
    validate: impl Fn(&Map<String, Value>) -> Vec<FieldError>,
) -> usize {
    assert_bounds_enforced_but(schema, base, &[], validate)
}

/// As [`assert_bounds_enforced`], where a value inside the bounds may still be refused for a
/// rule no schema states (`unstatable`: error types, e.g. a cron expression that never
/// fires).
pub fn assert_bounds_enforced_but(
    schema: &Value,
    base: &Map<String, Value>,
    unstatable: &[&str],
    validate: impl Fn(&Map<String, Value>) -> Vec<FieldError>,
) -> usize {
    assert!(validate(base).is_empty(), "the base body is valid");
    let mut tried = 0;
    for (key, field) in properties(schema) {
        for (value, valid) in edge_values(field) {
            let mut body = base.clone();
            body.insert(key.clone(), value.clone());
            let errors = validate(&body);
            let at_key = errors
                .iter()
                .any(|e| e.loc.first() == Some(&json!(key)) && !unstatable.contains(&e.kind));
            assert_eq!(
                !at_key,
                valid,
                "{key} = {value}: the schema says {}, the validator answered {errors:?}",
                if valid { "valid" } else { "invalid" },
            );
            tried += 1;
        }
    }
    tried
}

/// Strings around `examples`: each example, its prefixes, and each of its characters
/// replaced by, or followed by, characters that patterns tend to treat specially.
fn variants(examples: &[&str]) -> Vec<String> {
    const ODD: [char; 14] = [
        '-', '_', '.', ':', '{', '}', '+', ' ', 'g', 'F', '0', 'é', '\0', ';',
    ];
    let mut out = vec![String::new()];
    for example in examples {
        let chars: Vec<char> = example.chars().collect();
        for end in 0..=chars.len() {
            out.push(chars[..end].iter().collect());
        }
        for i in 0..chars.len() {
            for odd in ODD {
                let mut replaced = chars.clone();
                replaced[i] = odd;
                out.push(replaced.iter().collect());
                let mut inserted = chars.clone();
                inserted.insert(i, odd);
                out.push(inserted.iter().collect());
            }
        }
        out.push(format!("{example}{example}"));
    }
    out
}

/// Asserts that `format`'s pattern (as a regex engine reads it) and its check agree on every
/// string around `examples`.
pub fn assert_pattern_is_the_check(format: &Format, examples: &[&str]) {
    let pattern = regex::Regex::new(format.pattern).expect("the pattern compiles");
    for text in variants(examples) {
        assert_eq!(
            pattern.is_match(&text),
            (format.check)(&text),
            "pattern {} and the check disagree on {text:?}",
            format.pattern
        );
    }
}
