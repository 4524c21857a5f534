//! The field tables: what each input field of the API accepts, said once. Validators read their
//! input through these specs ([`Fields`]'s `read_*` methods, the query reader in `api::extract`),
//! and the OpenAPI document renders its schemas and parameters from the same specs, so a bound,
//! length, pattern or list of allowed values cannot differ between what is checked and what is
//! documented.
//!
//! Invariants:
//! - every check a `read_*` method makes from a spec is stated by that spec's schema;
//! - a check a schema cannot state (a cron expression that fires, an id that exists, a key of
//!   the same workflow) stays in the validator and is named in the field's `doc`;
//! - a text spec with a [`Format`] carries both the pattern the document shows and the function
//!   the validator calls; unit tests hold the two to the same answers.

use utoipa::openapi::Schema;

use super::limits::Size;

#[cfg(test)]
pub(crate) mod conformance;
mod read;
mod render;

pub use render::{body_schema, bulk_schema, exclusive, path_parameter, query_parameters};

/// The pattern of text that PostgreSQL can store: anything but U+0000.
pub const NUL_FREE: &str = "^[^\\u0000]*$";

/// A field of a body or query string: its name, what it accepts (`K`) and how absence and null
/// read.
#[derive(Clone, Copy, Debug)]
pub struct Spec<K> {
    /// The key or parameter name.
    pub name: &'static str,
    /// What the field means, for the document.
    pub doc: &'static str,
    /// Must be present (and, for text, a string).
    pub required: bool,
    /// Null reads as absent; otherwise null is refused.
    pub nullable: bool,
    /// Stored as PostgreSQL text or jsonb: U+0000 is refused anywhere inside.
    pub stored: bool,
    /// The error for a value outside the bounds, when it is not the generic one.
    pub error: Option<Invalid>,
    /// The error for a refused null, when it is not the type's.
    pub null_error: Option<Invalid>,
    /// The settable size the value is held to (text in characters, an object as JSON bytes).
    pub size: Option<Size>,
    /// What values are accepted.
    pub kind: K,
}

/// A validation error's type and message.
#[derive(Clone, Copy, Debug)]
pub struct Invalid {
    /// The error's `type`.
    pub kind: &'static str,
    /// The error's `msg`.
    pub msg: &'static str,
}

/// A string, counted in characters (Unicode scalar values, as JSON Schema counts).
#[derive(Clone, Copy, Debug)]
pub struct Text {
    /// Fewest characters.
    pub min_chars: usize,
    /// Most characters, if bounded.
    pub max_chars: Option<usize>,
    /// A rule beyond the length.
    pub format: Option<Format>,
}

/// A rule on a text that a pattern states and a function checks.
#[derive(Clone, Copy, Debug)]
pub struct Format {
    /// An ECMA-262 regular expression, for the document.
    pub pattern: &'static str,
    /// The check the validator makes.
    pub check: fn(&str) -> bool,
    /// The error when the check fails.
    pub invalid: Invalid,
}

/// An integer in `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct Integer {
    /// The least value taken.
    pub min: i64,
    /// The greatest value taken.
    pub max: i64,
    /// The value when not given, where it is fixed (not from configuration).
    pub default: Option<i64>,
}

/// A finite number, optionally bounded.
#[derive(Clone, Copy, Debug)]
pub struct Number {
    /// The least value taken, if bounded.
    pub min: Option<f64>,
    /// Bounded below, this value excluded.
    pub above: Option<f64>,
    /// The greatest value taken, if bounded.
    pub max: Option<f64>,
}

/// true or false.
#[derive(Clone, Copy, Debug)]
pub struct Boolean;

/// A JSON object; with `fields`, one of that shape (closed: no other keys).
#[derive(Clone, Copy, Debug)]
pub struct Object {
    /// The fields, when the shape is fixed.
    pub fields: Option<&'static [&'static dyn Documented]>,
    /// Keys other than the fields are refused.
    pub closed: bool,
}

/// A list of strings, or of UUIDs written as strings.
#[derive(Clone, Copy, Debug)]
pub struct List {
    /// Each item is a UUID.
    pub uuids: bool,
    /// Most items, if bounded.
    pub max_items: Option<usize>,
    /// Most characters in one item, if bounded.
    pub max_item_chars: Option<usize>,
    /// The rule every item follows, if any (its pattern goes in the document; the body's
    /// reader makes its check and names the item).
    pub item_format: Option<Format>,
}

/// An RFC 3339 timestamp.
#[derive(Clone, Copy, Debug)]
pub struct Timestamp {
    /// How many days from now, either way, it may be, if bounded.
    pub within_days: Option<i64>,
}

/// One of a fixed set of names.
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    /// The names taken.
    pub values: fn() -> Vec<&'static str>,
    /// The message's description of the allowed values.
    pub allowed: &'static str,
}

/// A key some bodies refuse (must be absent or null).
#[derive(Clone, Copy, Debug)]
pub struct Refused;

const fn spec<K>(name: &'static str, doc: &'static str, kind: K) -> Spec<K> {
    Spec {
        name,
        doc,
        required: false,
        nullable: true,
        stored: false,
        error: None,
        null_error: None,
        size: None,
        kind,
    }
}

/// A text field: optional, nullable, any length.
pub const fn text(name: &'static str, doc: &'static str) -> Spec<Text> {
    spec(
        name,
        doc,
        Text {
            min_chars: 0,
            max_chars: None,
            format: None,
        },
    )
}

/// An integer field in `min..=max`.
pub const fn integer(name: &'static str, min: i64, max: i64, doc: &'static str) -> Spec<Integer> {
    spec(
        name,
        doc,
        Integer {
            min,
            max,
            default: None,
        },
    )
}

/// A number field.
pub const fn number(name: &'static str, doc: &'static str) -> Spec<Number> {
    spec(
        name,
        doc,
        Number {
            min: None,
            above: None,
            max: None,
        },
    )
}

/// A boolean field.
pub const fn boolean(name: &'static str, doc: &'static str) -> Spec<Boolean> {
    spec(name, doc, Boolean)
}

/// A JSON object field of any shape.
pub const fn object(name: &'static str, doc: &'static str) -> Spec<Object> {
    spec(
        name,
        doc,
        Object {
            fields: None,
            closed: false,
        },
    )
}

/// A list of strings.
pub const fn strings(name: &'static str, doc: &'static str) -> Spec<List> {
    spec(
        name,
        doc,
        List {
            uuids: false,
            max_items: None,
            max_item_chars: None,
            item_format: None,
        },
    )
}

/// A list of UUIDs.
pub const fn uuids(name: &'static str, doc: &'static str) -> Spec<List> {
    spec(
        name,
        doc,
        List {
            uuids: true,
            max_items: None,
            max_item_chars: None,
            item_format: None,
        },
    )
}

/// A timestamp field.
pub const fn timestamp(name: &'static str, doc: &'static str) -> Spec<Timestamp> {
    spec(name, doc, Timestamp { within_days: None })
}

/// A field whose value is one of `values()`.
pub const fn choice(
    name: &'static str,
    values: fn() -> Vec<&'static str>,
    allowed: &'static str,
    doc: &'static str,
) -> Spec<Choice> {
    spec(name, doc, Choice { values, allowed })
}

/// A key that must be absent or null.
pub const fn refused(name: &'static str, doc: &'static str) -> Spec<Refused> {
    spec(name, doc, Refused)
}

impl<K> Spec<K> {
    /// Must be present, and not null.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self.nullable = false;
        self
    }

    /// Null is taken (reading as absent), also where the key must be present.
    pub const fn allow_null(mut self) -> Self {
        self.nullable = true;
        self
    }

    /// May be left out, but not null.
    pub const fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }

    /// The same spec under another name.
    pub const fn with_name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// May be left out (whether null is taken stays as it was).
    pub const fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Reports a refused null with this type and message.
    pub const fn null_error(mut self, kind: &'static str, msg: &'static str) -> Self {
        self.nullable = false;
        self.null_error = Some(Invalid { kind, msg });
        self
    }

    /// Refuses U+0000 anywhere inside.
    pub const fn stored(mut self) -> Self {
        self.stored = true;
        self
    }

    /// Reports values out of bounds with this type and message.
    pub const fn error(mut self, kind: &'static str, msg: &'static str) -> Self {
        self.error = Some(Invalid { kind, msg });
        self
    }
}

impl Spec<Text> {
    /// Between `min` and `max` characters.
    pub const fn chars(mut self, min: usize, max: usize) -> Self {
        self.kind.min_chars = min;
        self.kind.max_chars = Some(max);
        self
    }

    /// At least one character.
    pub const fn non_empty(mut self) -> Self {
        self.kind.min_chars = 1;
        self
    }

    /// Also matches `format`.
    pub const fn format(mut self, format: Format) -> Self {
        self.kind.format = Some(format);
        self
    }

    /// At most as many characters as the settable `size` (the document states its default).
    pub const fn sized(mut self, size: Size) -> Self {
        self.kind.max_chars = Some(size.default_cap());
        self.size = Some(size);
        self
    }
}

impl Spec<Integer> {
    /// The value when not given.
    pub const fn default(mut self, value: i64) -> Self {
        self.kind.default = Some(value);
        self
    }
}

impl Spec<Number> {
    /// At least `min`.
    pub const fn at_least(mut self, min: f64) -> Self {
        self.kind.min = Some(min);
        self
    }

    /// Greater than `bound`.
    pub const fn above(mut self, bound: f64) -> Self {
        self.kind.above = Some(bound);
        self
    }

    /// At most `max`.
    pub const fn at_most(mut self, max: f64) -> Self {
        self.kind.max = Some(max);
        self
    }
}

impl Spec<Timestamp> {
    /// No further than `days` from now, either way.
    pub const fn within_days(mut self, days: i64) -> Self {
        self.kind.within_days = Some(days);
        self
    }
}

impl Spec<Object> {
    /// An object of exactly these fields.
    pub const fn shaped(mut self, fields: &'static [&'static dyn Documented]) -> Self {
        self.kind.fields = Some(fields);
        self.kind.closed = true;
        self
    }

    /// At most the settable `size`, as compact JSON.
    pub const fn sized(mut self, size: Size) -> Self {
        self.size = Some(size);
        self
    }
}

impl Spec<List> {
    /// At most `n` items.
    pub const fn max_items(mut self, n: usize) -> Self {
        self.kind.max_items = Some(n);
        self
    }

    /// Each item at most `n` characters.
    pub const fn max_item_chars(mut self, n: usize) -> Self {
        self.kind.max_item_chars = Some(n);
        self
    }

    /// Each item follows `format`.
    pub const fn item_format(mut self, format: Format) -> Self {
        self.kind.item_format = Some(format);
        self
    }
}

/// A spec as the document sees it, whatever its kind: what a table of fields holds.
pub trait Documented: Sync + std::fmt::Debug {
    /// The key or parameter name.
    fn name(&self) -> &'static str;
    /// What the field means.
    fn doc(&self) -> Option<String>;
    /// Must be present.
    fn is_required(&self) -> bool;
    /// Refuses U+0000 anywhere inside.
    fn is_stored(&self) -> bool;
    /// The JSON Schema of the value.
    fn schema(&self) -> Schema;
    /// Most items, for a list with a bound.
    fn max_items(&self) -> Option<usize>;
}

/// How a kind of value is described in JSON Schema.
pub trait Kind: Copy + Sync + std::fmt::Debug {
    /// The value's schema; `stored` adds the NUL rule, `nullable` allows null.
    fn schema(&self, stored: bool, nullable: bool, doc: &str) -> Schema;
    /// Most items, for a list with a bound.
    fn max_items(&self) -> Option<usize> {
        None
    }
}

impl<K: Kind> Documented for Spec<K> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn doc(&self) -> Option<String> {
        let doc = self.full_doc();
        (!doc.is_empty()).then_some(doc)
    }

    fn is_required(&self) -> bool {
        self.required
    }

    fn is_stored(&self) -> bool {
        self.stored
    }

    fn schema(&self) -> Schema {
        self.kind
            .schema(self.stored, self.nullable, &self.full_doc())
    }

    fn max_items(&self) -> Option<usize> {
        self.kind.max_items()
    }
}

impl<K> Spec<K> {
    /// The description, with the sentence stating the settable size, if any.
    fn full_doc(&self) -> String {
        match self.size {
            Some(size) if self.doc.is_empty() => size.note(),
            Some(size) => format!("{} {}", self.doc, size.note()),
            None => self.doc.to_string(),
        }
    }
}

/// The keys of `fields` that refuse U+0000, for [`super::nul_errors`].
pub fn stored_keys(fields: &[&dyn Documented]) -> Vec<&'static str> {
    fields
        .iter()
        .filter(|f| f.is_stored())
        .map(|f| f.name())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::Fields;

    #[test]
    fn the_nul_free_pattern_refuses_only_the_nul_character() {
        let pattern = regex::Regex::new(NUL_FREE).unwrap();
        assert!(pattern.is_match("any text, é, \u{1}"));
        assert!(!pattern.is_match("a\0b"));
    }

    #[test]
    fn the_queue_name_pattern_is_the_queue_name_check() {
        conformance::assert_pattern_is_the_check(
            &super::super::QUEUE_NAME,
            &["default", "emails.high:eu-1_x", &"q".repeat(100)],
        );
    }

    #[test]
    fn a_required_text_reads_null_as_the_wrong_type_and_a_short_one_as_too_short() {
        const NAME: Spec<Text> = text("name", "").required().chars(2, 3);
        let body = json!({"name": null}).as_object().unwrap().clone();
        let mut fields = Fields::new(&body);
        assert_eq!(fields.read_text(&NAME), None);
        let body = json!({"name": "é"}).as_object().unwrap().clone();
        let mut short = Fields::new(&body);
        assert_eq!(short.read_text(&NAME), None);
        let kinds: Vec<_> = fields
            .finish()
            .unwrap_err()
            .into_iter()
            .chain(short.finish().unwrap_err())
            .map(|e| (e.kind, e.msg))
            .collect();
        assert_eq!(
            kinds,
            [
                ("string_type", "Input should be a valid string".to_string()),
                (
                    "string_too_short",
                    "String should have at least 2 characters".to_string()
                )
            ]
        );
    }

    #[test]
    fn an_integer_with_a_zero_fraction_reads_as_that_integer() {
        const N: Spec<Integer> = integer("n", 1, 10, "");
        for (value, read) in [
            (json!(3.0), Some(3)),
            (json!(3.5), None),
            (json!(1e300), None),
        ] {
            let body = json!({ "n": value }).as_object().unwrap().clone();
            assert_eq!(Fields::new(&body).read_integer(&N), read, "{value}");
        }
    }
}
