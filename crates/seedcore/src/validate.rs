//! Validation of JSON input, shared by the API (request bodies, query strings) and the built-in
//! handlers (task params). Errors follow FastAPI's shape (`loc`, `msg`, `type`) because existing
//! clients parse it. The API's fields are described once, in [`spec`] tables that both the
//! readers here and the OpenAPI document use.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::{FactPatch, NewFact, task::valid_queue_name};

#[cfg(test)]
pub(crate) mod arbitrary;
pub mod limits;
pub mod spec;

use limits::Size;
use spec::{Documented, Format, Invalid, Spec};

/// A queue name: what `valid_queue_name` accepts, as a pattern.
pub const QUEUE_NAME: Format = Format {
    pattern: "^[A-Za-z0-9_.:-]{1,100}$",
    check: valid_queue_name,
    invalid: Invalid {
        kind: "queue_name",
        msg: "A queue name is 1 to 100 letters, digits, '_', '-', '.' or ':'",
    },
};

/// One thing wrong with the input.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where: e.g. `["body", "type"]` or `["query", "limit"]`; list positions are numbers.
    #[schema(schema_with = location_schema)]
    pub loc: Vec<Value>,
    /// What is wrong, for people.
    pub msg: String,
    /// A stable code for programs, e.g. `missing` or `string_type`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A location: names and list positions.
fn location_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type, schema::AnyOfBuilder};
    let part = AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Integer));
    ArrayBuilder::new().items(part).build()
}

impl FieldError {
    /// An error at `loc`, of type `kind`.
    pub fn new(loc: Vec<Value>, kind: &'static str, msg: impl Into<String>) -> FieldError {
        FieldError {
            loc,
            msg: msg.into(),
            kind,
        }
    }

    /// The same error, located under `prefix` (e.g. "body").
    pub fn under(mut self, prefix: &str) -> FieldError {
        self.loc.insert(0, Value::String(prefix.into()));
        self
    }

    /// The same error, located under a list position.
    pub fn under_index(mut self, index: usize) -> FieldError {
        self.loc.insert(0, Value::from(index));
        self
    }
}

/// The error type and message for text holding U+0000.
pub const NUL_KIND: &str = "string_nul";
/// The message for text holding U+0000.
pub const NUL_MSG: &str = "Text may not contain the NUL character (\\u0000)";

/// Where the given keys of `object` hold U+0000: in a string, an object key or anywhere nested.
/// Neither PostgreSQL text nor jsonb can store it, so it is refused as invalid input instead of
/// failing in the database as a 500.
pub fn nul_errors(object: &Map<String, Value>, keys: &[&str]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for key in keys {
        if let Some(value) = object.get(*key) {
            find_nul(value, &mut vec![Value::from(*key)], &mut errors);
        }
    }
    errors
}

fn find_nul(value: &Value, loc: &mut Vec<Value>, errors: &mut Vec<FieldError>) {
    match value {
        Value::String(s) if s.contains('\0') => {
            errors.push(FieldError::new(loc.clone(), NUL_KIND, NUL_MSG));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                loc.push(Value::from(i));
                find_nul(item, loc, errors);
                loc.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                loc.push(Value::from(key.as_str()));
                if key.contains('\0') {
                    errors.push(FieldError::new(loc.clone(), NUL_KIND, NUL_MSG));
                }
                find_nul(item, loc, errors);
                loc.pop();
            }
        }
        _ => {}
    }
}

/// Joins errors into one line, for a handler's error message.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            let loc: Vec<String> = e
                .loc
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                .collect();
            format!("{}: {}", loc.join("."), e.msg)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads typed fields out of a JSON object, collecting every error instead of stopping at the
/// first, so a client learns all that is wrong in one round trip.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Starts reading `object`, with no errors yet.
    pub fn new(object: &'a Map<String, Value>) -> Fields<'a> {
        Fields {
            object,
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, key: &str, kind: &'static str, msg: &str) {
        self.errors
            .push(FieldError::new(vec![Value::String(key.into())], kind, msg));
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        match self.object.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value),
        }
    }

    /// Whether the key was sent at all (null included).
    pub fn has(&self, key: &str) -> bool {
        self.object.contains_key(key)
    }

    /// An optional string; null reads as absent.
    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.present(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.fail(key, "string_type", "Input should be a valid string");
                None
            }
        }
    }

    /// An optional object; null reads as absent.
    pub fn object(&mut self, key: &str) -> Option<Map<String, Value>> {
        match self.present(key)? {
            Value::Object(map) => Some(map.clone()),
            _ => {
                self.fail(key, "dict_type", "Input should be a valid dictionary");
                None
            }
        }
    }

    /// An optional list of strings; null reads as absent.
    pub fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        let Value::Array(items) = self.present(key)? else {
            self.fail(key, "list_type", "Input should be a valid list");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                _ => self.errors.push(FieldError::new(
                    vec![Value::String(key.into()), Value::from(i)],
                    "string_type",
                    "Input should be a valid string",
                )),
            }
        }
        Some(out)
    }

    /// An optional list of UUIDs written as strings; null reads as absent.
    pub fn uuids(&mut self, key: &str) -> Option<Vec<uuid::Uuid>> {
        let strings = self.strings(key)?;
        let mut ids = Vec::with_capacity(strings.len());
        for (i, raw) in strings.iter().enumerate() {
            match uuid::Uuid::try_parse(raw) {
                Ok(id) => ids.push(id),
                Err(_) => self.errors.push(FieldError::new(
                    vec![Value::String(key.into()), Value::from(i)],
                    "uuid_parsing",
                    format!("Input should be a valid UUID, got '{raw}'"),
                )),
            }
        }
        Some(ids)
    }

    /// An optional RFC 3339 timestamp; null reads as absent.
    pub fn timestamp(&mut self, key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let text = self.string(key)?;
        match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(at) => Some(at.with_timezone(&chrono::Utc)),
            Err(_) => {
                self.fail(
                    key,
                    "datetime_parsing",
                    "Input should be an RFC 3339 timestamp such as 2026-11-28T12:00:00Z",
                );
                None
            }
        }
    }

    /// An optional finite number; null reads as absent.
    pub fn number(&mut self, key: &str) -> Option<f64> {
        match self.present(key)?.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.fail(key, "float_type", "Input should be a valid number");
                None
            }
        }
    }

    /// An optional number at least `min`.
    pub fn number_at_least(&mut self, key: &str, min: f64) -> Option<f64> {
        let n = self.number(key)?;
        if n < min {
            self.fail(
                key,
                "greater_than_equal",
                &format!("Input should be greater than or equal to {min}"),
            );
            return None;
        }
        Some(n)
    }

    /// An optional integer within `min..=max`.
    pub fn integer_in(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.present(key)?;
        let Some(n) = value.as_i64() else {
            self.fail(key, "int_type", "Input should be a valid integer");
            return None;
        };
        if n < min {
            self.fail(
                key,
                "greater_than_equal",
                &format!("Input should be greater than or equal to {min}"),
            );
            return None;
        }
        if n > max {
            self.fail(
                key,
                "less_than_equal",
                &format!("Input should be less than or equal to {max}"),
            );
            return None;
        }
        Some(n)
    }

    /// An optional boolean; null reads as absent.
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.present(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.fail(key, "bool_type", "Input should be a valid boolean");
                None
            }
        }
    }

    /// Ok when every field read so far was valid.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// A fact's text.
const FACT_TEXT: Spec<spec::Text> = spec::text("text", "The fact; may be empty.")
    .required()
    .sized(Size::FactTextChars)
    .stored();
/// A fact's tags.
const FACT_TAGS: Spec<spec::List> =
    spec::strings("tags", "Exact, case-sensitive labels; null means `[]`.")
        .max_items(limits::MAX_TAGS)
        .max_item_chars(limits::MAX_TAG_CHARS)
        .stored();
/// A fact's metadata.
const FACT_META: Spec<spec::Object> = spec::object(
    "meta_data",
    "Any JSON object (no U+0000 in any key or string); null means `{}`.",
)
.sized(Size::MetaDataBytes)
.stored();
/// An update's text: may be left out, not null.
const PATCH_TEXT: Spec<spec::Text> = spec::text("text", "The new text; may not be null.")
    .not_null()
    .sized(Size::FactTextChars)
    .stored();

/// The body of a new fact.
pub const NEW_FACT: &[&dyn Documented] = &[&FACT_TEXT, &FACT_TAGS, &FACT_META];
/// The body of a fact update: only the keys present change.
pub const FACT_PATCH: &[&dyn Documented] = &[&PATCH_TEXT, &FACT_TAGS, &FACT_META];

/// A fact to create from a JSON object (`text` required; `tags` and `meta_data` optional).
pub fn new_fact(object: &Map<String, Value>) -> Result<NewFact, Vec<FieldError>> {
    let mut fields = Fields::new(object);
    let text = fields.read_text(&FACT_TEXT);
    let tags = fields.read_strings(&FACT_TAGS).unwrap_or_default();
    let meta_data = fields.read_object(&FACT_META).unwrap_or_default();
    fact_errors(fields, object)?;
    Ok(NewFact {
        text: text.unwrap_or_default(),
        tags,
        meta_data,
    })
}

/// A fact update from a JSON object: only the keys present change; `text` may not be null.
pub fn fact_patch(object: &Map<String, Value>) -> Result<FactPatch, Vec<FieldError>> {
    let mut fields = Fields::new(object);
    let mut patch = FactPatch::default();
    if fields.has("text") {
        patch.text = fields.read_text(&PATCH_TEXT);
    }
    if fields.has("tags") {
        patch.tags = Some(fields.read_strings(&FACT_TAGS).unwrap_or_default());
    }
    if fields.has("meta_data") {
        patch.meta_data = Some(fields.read_object(&FACT_META).unwrap_or_default());
    }
    fact_errors(fields, object)?;
    Ok(patch)
}

/// Every error in a fact body: the fields' own, then any NUL character they hold.
fn fact_errors(fields: Fields, object: &Map<String, Value>) -> Result<(), Vec<FieldError>> {
    let mut errors = fields.finish().err().unwrap_or_default();
    errors.extend(nul_errors(object, &spec::stored_keys(NEW_FACT)));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_fact_needs_text_and_string_tags() {
        let errors = new_fact(&object(json!({"tags": ["a", 1]}))).unwrap_err();
        let kinds: Vec<_> = errors.iter().map(|e| (e.loc.clone(), e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (vec![json!("text")], "missing"),
                (vec![json!("tags"), json!(1)], "string_type")
            ]
        );
    }

    #[test]
    fn null_tags_and_metadata_read_as_empty() {
        let fact = new_fact(&object(
            json!({"text": "", "tags": null, "meta_data": null}),
        ))
        .unwrap();
        assert_eq!(
            fact,
            NewFact {
                text: String::new(),
                tags: vec![],
                meta_data: Map::new()
            }
        );
    }

    #[test]
    fn a_patch_changes_only_the_keys_sent_and_refuses_null_text() {
        let patch = fact_patch(&object(json!({"tags": null}))).unwrap();
        assert_eq!(
            patch,
            FactPatch {
                tags: Some(vec![]),
                ..FactPatch::default()
            }
        );
        assert!(fact_patch(&object(json!({}))).unwrap().is_empty());
        let errors = fact_patch(&object(json!({"text": null}))).unwrap_err();
        assert_eq!(errors[0].loc, vec![json!("text")]);
    }

    #[test]
    fn integers_outside_their_range_name_the_bound() {
        let map = object(json!({"limit": 0, "other": 2000, "word": "x"}));
        let mut fields = Fields::new(&map);
        assert_eq!(fields.integer_in("limit", 1, 1000), None);
        assert_eq!(fields.integer_in("other", 1, 1000), None);
        assert_eq!(fields.integer_in("word", 1, 1000), None);
        let errors = fields.finish().unwrap_err();
        let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec!["greater_than_equal", "less_than_equal", "int_type"]
        );
        assert_eq!(errors[1].msg, "Input should be less than or equal to 1000");
    }

    #[test]
    fn nul_characters_anywhere_in_a_fact_are_refused() {
        let errors = new_fact(&object(json!({
            "text": "a\u{0}b",
            "tags": ["ok", "x\u{0}"],
            "meta_data": {"deep": [{"k\u{0}": 1}]},
        })))
        .unwrap_err();
        let locs: Vec<_> = errors.iter().map(|e| (e.loc.clone(), e.kind)).collect();
        assert_eq!(
            locs,
            vec![
                (vec![json!("text")], NUL_KIND),
                (vec![json!("tags"), json!(1)], NUL_KIND),
                (
                    vec![json!("meta_data"), json!("deep"), json!(0), json!("k\u{0}")],
                    NUL_KIND
                ),
            ]
        );
    }

    #[test]
    fn described_errors_name_their_location() {
        let errors = new_fact(&object(json!({}))).unwrap_err();
        assert_eq!(describe(&errors), "text: Field required");
    }
}
