//! Generators of outside input for the property tests of every parser: any JSON value, and
//! objects whose keys are mostly the ones a parser reads, holding values of every type (with a
//! bias towards the edges: extreme numbers, dates far away, NUL characters, ids, long texts).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Strings a parser of our input should meet: empty, odd, close to valid, valid.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,12}",
        1 => Just(String::new()),
        1 => Just("a\u{0}b".to_string()),
        1 => Just("0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b".to_string()),
        1 => Just("0f8e".to_string()),
        1 => Just("2026-11-28T12:00:00Z".to_string()),
        1 => Just("9999-12-31T23:59:59Z".to_string()),
        1 => Just("0001-01-01T00:00:00+14:00".to_string()),
        1 => Just("echo".to_string()),
        1 => Just("running".to_string()),
        1 => Just("*/5 * * * *".to_string()),
        1 => Just("0 0 30 2 *".to_string()),
        1 => Just("Europe/Zurich".to_string()),
        1 => Just("é".repeat(300)),
    ]
}

/// Numbers at and beyond every bound the API has.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|n| json!(n)),
        Just(json!(1e30)),
        Just(json!(-1e30)),
        Just(json!(1.7e308)),
        Just(json!(-0.0)),
        Just(json!(0.5)),
        Just(json!(1_700_000_000.25)),
        Just(json!(3.0e11)),
        Just(json!(-7.0e10)),
        Just(json!(8.0e12)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let nested = leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((text(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    });
    prop_oneof![
        8 => nested,
        1 => Just(json!(["ok", "a\u{0}b"])),
        1 => Just(json!({"k\u{0}": 1})),
    ]
}

/// An object holding some of `keys` (and maybe one other key), each with any value.
pub fn record(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let known = proptest::sample::subsequence(keys, 0..=keys.len());
    let values = proptest::collection::vec(json_value(), keys.len() + 1);
    (known, values, proptest::option::of(text())).prop_map(|(known, values, other)| {
        let mut map = Map::new();
        for (key, value) in known.into_iter().zip(values.iter()) {
            map.insert(key.to_string(), value.clone());
        }
        if let Some(other) = other {
            map.insert(other, values[keys.len()].clone());
        }
        Value::Object(map)
    })
}

/// As [`record`], always an object.
pub fn object(keys: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    record(keys).prop_map(|value| match value {
        Value::Object(map) => map,
        _ => unreachable!("a record is an object"),
    })
}

/// Values at the edges of what some field takes: NUL characters where text is stored, times
/// beyond what the stores hold, numbers beyond every bound, empty and wrong containers.
fn edge() -> impl Strategy<Value = Value> {
    proptest::sample::select(vec![
        Value::Null,
        json!("a\u{0}b"),
        json!(["ok", "a\u{0}b"]),
        json!({"k\u{0}": 1}),
        json!({"k": ["a\u{0}"]}),
        json!(3.0e11),
        json!(-7.0e10),
        json!(8.0e12),
        json!(1e30),
        json!(-1e30),
        json!(1.7e308),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-1),
        json!(0),
        json!(2.5),
        json!(""),
        json!([]),
        json!({}),
        json!("9999-12-31T23:59:59Z"),
        json!("é".repeat(70_000)),
        json!((0..150).map(|i| format!("t{i}")).collect::<Vec<_>>()),
    ])
}

/// `base` with some of `keys` replaced by any value or removed: input that gets past the first
/// checks of a parser and then differs from a valid one where it matters.
pub fn edited(base: Value, keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let edits = proptest::sample::subsequence(keys, 0..=keys.len().min(3));
    let value = prop_oneof![json_value(), edge()];
    let values = proptest::collection::vec(proptest::option::weighted(0.9, value), 3);
    (edits, values).prop_map(move |(edits, values)| {
        let mut object = base.clone();
        let map = object.as_object_mut().expect("an object to edit");
        for (key, value) in edits.into_iter().zip(values) {
            match value {
                Some(value) => map.insert(key.to_string(), value),
                None => map.remove(key),
            };
        }
        object
    })
}
