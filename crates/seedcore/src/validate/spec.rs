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

use serde_json::Value;
use utoipa::openapi::{
    AllOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type,
    path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle},
    schema::{AdditionalProperties, AnyOfBuilder, SchemaType},
};

use super::{FieldError, Fields};

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

/// A finite number, optionally bounded below.
#[derive(Clone, Copy, Debug)]
pub struct Number {
    /// The least value taken, if bounded.
    pub min: Option<f64>,
    /// Bounded below, this value excluded.
    pub above: Option<f64>,
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
}

/// An RFC 3339 timestamp.
#[derive(Clone, Copy, Debug)]
pub struct Timestamp;

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
        },
    )
}

/// A timestamp field.
pub const fn timestamp(name: &'static str, doc: &'static str) -> Spec<Timestamp> {
    spec(name, doc, Timestamp)
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
}

impl Spec<Object> {
    /// An object of exactly these fields.
    pub const fn shaped(mut self, fields: &'static [&'static dyn Documented]) -> Self {
        self.kind.fields = Some(fields);
        self.kind.closed = true;
        self
    }
}

impl Spec<List> {
    /// At most `n` items.
    pub const fn max_items(mut self, n: usize) -> Self {
        self.kind.max_items = Some(n);
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
}

/// How a kind of value is described in JSON Schema.
pub trait Kind: Copy + Sync + std::fmt::Debug {
    /// The value's schema; `stored` adds the NUL rule, `nullable` allows null.
    fn schema(&self, stored: bool, nullable: bool, doc: &str) -> Schema;
}

impl<K: Kind> Documented for Spec<K> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn doc(&self) -> Option<String> {
        (!self.doc.is_empty()).then(|| self.doc.to_string())
    }

    fn is_required(&self) -> bool {
        self.required
    }

    fn is_stored(&self) -> bool {
        self.stored
    }

    fn schema(&self) -> Schema {
        self.kind.schema(self.stored, self.nullable, self.doc)
    }
}

fn types(base: Type, nullable: bool) -> SchemaType {
    if nullable {
        SchemaType::from_iter([base, Type::Null])
    } else {
        SchemaType::Type(base)
    }
}

fn described(builder: ObjectBuilder, doc: &str) -> ObjectBuilder {
    builder.description((!doc.is_empty()).then(|| doc.to_string()))
}

impl Kind for Text {
    fn schema(&self, stored: bool, nullable: bool, doc: &str) -> Schema {
        let pattern = match (self.format, stored) {
            (Some(format), _) => Some(format.pattern),
            (None, true) => Some(NUL_FREE),
            (None, false) => None,
        };
        let builder = ObjectBuilder::new()
            .schema_type(types(Type::String, nullable))
            .min_length((self.min_chars > 0).then_some(self.min_chars))
            .max_length(self.max_chars)
            .pattern(pattern);
        described(builder, doc).into()
    }
}

impl Kind for Integer {
    fn schema(&self, _: bool, nullable: bool, doc: &str) -> Schema {
        let builder = ObjectBuilder::new()
            .schema_type(types(Type::Integer, nullable))
            .minimum(Some(self.min as f64))
            .maximum(Some(self.max as f64))
            .default(self.default.map(Value::from));
        described(builder, doc).into()
    }
}

impl Kind for Number {
    fn schema(&self, _: bool, nullable: bool, doc: &str) -> Schema {
        let builder = ObjectBuilder::new()
            .schema_type(types(Type::Number, nullable))
            .minimum(self.min)
            .exclusive_minimum(self.above);
        described(builder, doc).into()
    }
}

impl Kind for Boolean {
    fn schema(&self, _: bool, nullable: bool, doc: &str) -> Schema {
        described(
            ObjectBuilder::new().schema_type(types(Type::Boolean, nullable)),
            doc,
        )
        .into()
    }
}

impl Kind for Object {
    fn schema(&self, _: bool, nullable: bool, doc: &str) -> Schema {
        let mut builder = ObjectBuilder::new().schema_type(types(Type::Object, nullable));
        if let Some(fields) = self.fields {
            builder = properties(builder, fields, self.closed);
        }
        described(builder, doc).into()
    }
}

impl Kind for List {
    fn schema(&self, stored: bool, nullable: bool, doc: &str) -> Schema {
        let item = if self.uuids {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        } else {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(stored.then_some(NUL_FREE))
        };
        ArrayBuilder::new()
            .schema_type(types(Type::Array, nullable))
            .items(item)
            .max_items(self.max_items)
            .description((!doc.is_empty()).then(|| doc.to_string()))
            .into()
    }
}

impl Kind for Timestamp {
    // Nullable, it is written as a choice of the two: generators read a format beside a list of
    // types as applying to the null too, and send "" for it.
    fn schema(&self, _: bool, nullable: bool, doc: &str) -> Schema {
        let time = described(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            doc,
        );
        if !nullable {
            return time.into();
        }
        AnyOfBuilder::new()
            .item(time)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description((!doc.is_empty()).then(|| doc.to_string()))
            .into()
    }
}

impl Kind for Choice {
    fn schema(&self, _: bool, nullable: bool, doc: &str) -> Schema {
        let mut values: Vec<Value> = (self.values)().into_iter().map(Value::from).collect();
        if nullable {
            values.push(Value::Null);
        }
        let builder = ObjectBuilder::new()
            .schema_type(types(Type::String, nullable))
            .enum_values(Some(values));
        described(builder, doc).into()
    }
}

impl Kind for Refused {
    fn schema(&self, _: bool, _: bool, doc: &str) -> Schema {
        described(ObjectBuilder::new().schema_type(Type::Null), doc).into()
    }
}

fn properties(
    mut builder: ObjectBuilder,
    fields: &[&dyn Documented],
    closed: bool,
) -> ObjectBuilder {
    for field in fields {
        builder = builder.property(field.name(), field.schema());
        if field.is_required() {
            builder = builder.required(field.name());
        }
    }
    if closed {
        builder =
            builder.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    }
    builder
}

/// The schema of a body made of `fields` (closed: other keys are refused, not ignored), with a
/// description.
pub fn body_schema(fields: &[&dyn Documented], closed: bool, doc: &str) -> Schema {
    described(
        properties(
            ObjectBuilder::new().schema_type(Type::Object),
            fields,
            closed,
        ),
        doc,
    )
    .into()
}

/// The same body, where at most one of each pair of keys may hold a value (the other absent or
/// null).
pub fn exclusive(body: Schema, pairs: &[(&str, &str)]) -> Schema {
    let null = || ObjectBuilder::new().schema_type(Type::Null);
    pairs
        .iter()
        .fold(AllOfBuilder::new().item(body), |all, (a, b)| {
            all.item(
                AnyOfBuilder::new()
                    .item(ObjectBuilder::new().property(*a, null()))
                    .item(ObjectBuilder::new().property(*b, null())),
            )
        })
        .into()
}

/// A list of 1 to `max` items of `item`, under `key`: the body of a bulk request.
pub fn bulk_schema(key: &str, item: impl Into<RefOr<Schema>>, max: usize, doc: &str) -> Schema {
    let list = ArrayBuilder::new()
        .items(item.into())
        .min_items(Some(1))
        .max_items(Some(max));
    described(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(key, list)
            .required(key),
        doc,
    )
    .into()
}

/// Query parameters from `fields`. An empty value reads as not given, so each also accepts "".
/// A list is documented as its item, which may be repeated: in a query string, one item and a
/// list of one cannot be told apart.
pub fn query_parameters(fields: &[&dyn Documented]) -> Vec<Parameter> {
    fields
        .iter()
        .map(|field| {
            let empty = ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0));
            let value = match undescribed(field.schema()) {
                Schema::Array(list) => match list.items {
                    utoipa::openapi::schema::ArrayItems::RefOrSchema(item) => *item,
                    _ => RefOr::T(Schema::Array(list)),
                },
                other => RefOr::T(other),
            };
            let schema = AnyOfBuilder::new().item(value).item(empty);
            ParameterBuilder::new()
                .name(field.name())
                .parameter_in(ParameterIn::Query)
                .required(utoipa::openapi::Required::False)
                .style(Some(ParameterStyle::Form))
                .explode(Some(true))
                .description(field.doc())
                .schema(Some(schema))
                .build()
        })
        .collect()
}

/// A path parameter from `field`.
pub fn path_parameter(field: &dyn Documented) -> Parameter {
    ParameterBuilder::new()
        .name(field.name())
        .description(field.doc())
        .parameter_in(ParameterIn::Path)
        .required(utoipa::openapi::Required::True)
        .schema(Some(undescribed(field.schema())))
        .build()
}

/// A parameter's schema without the description the parameter itself carries.
fn undescribed(schema: Schema) -> Schema {
    match schema {
        Schema::Object(mut object) => {
            object.description = None;
            Schema::Object(object)
        }
        Schema::Array(mut list) => {
            list.description = None;
            Schema::Array(list)
        }
        Schema::AnyOf(mut any) => {
            any.description = None;
            Schema::AnyOf(any)
        }
        other => other,
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

// ---- reading ------------------------------------------------------------------------------

impl Fields<'_> {
    fn fail_with(&mut self, name: &str, kind: &'static str, msg: impl Into<String>) {
        self.errors
            .push(FieldError::new(vec![Value::from(name)], kind, msg));
    }

    /// The value of a spec's key, or None (recording an error) when it is missing but required
    /// or null but not allowed to be; `type_error` is the error for a refused null.
    fn given<K>(&mut self, spec: &Spec<K>, type_error: Invalid) -> Option<&Value> {
        match self.object.get(spec.name) {
            None if spec.required => self.fail_with(spec.name, "missing", "Field required"),
            None => {}
            Some(Value::Null) if !spec.nullable => {
                let Invalid { kind, msg } = spec.null_error.unwrap_or(type_error);
                self.fail_with(spec.name, kind, msg)
            }
            Some(Value::Null) => {}
            Some(value) => return Some(value),
        }
        None
    }

    fn out_of_bounds<K>(&mut self, spec: &Spec<K>, kind: &'static str, msg: String) {
        match spec.error {
            Some(error) => self.fail_with(spec.name, error.kind, error.msg),
            None => self.fail_with(spec.name, kind, msg),
        }
    }

    /// A text field, checked against its length and format.
    pub fn read_text(&mut self, spec: &Spec<Text>) -> Option<String> {
        let Value::String(text) = self.given(spec, STRING_TYPE)? else {
            self.fail_with(spec.name, STRING_TYPE.kind, STRING_TYPE.msg);
            return None;
        };
        let text = text.clone();
        let rule = spec.kind;
        let chars = text.chars().count();
        if chars < rule.min_chars {
            let plural = if rule.min_chars == 1 { "" } else { "s" };
            let msg = format!(
                "String should have at least {} character{plural}",
                rule.min_chars
            );
            self.out_of_bounds(spec, "string_too_short", msg);
            return None;
        }
        if let Some(max) = rule.max_chars.filter(|max| chars > *max) {
            let msg = format!("String should have at most {max} characters");
            self.out_of_bounds(spec, "string_too_long", msg);
            return None;
        }
        if let Some(format) = rule.format.filter(|f| !(f.check)(&text)) {
            self.fail_with(spec.name, format.invalid.kind, format.invalid.msg);
            return None;
        }
        Some(text)
    }

    /// An integer field within its bounds.
    pub fn read_integer(&mut self, spec: &Spec<Integer>) -> Option<i64> {
        let Integer { min, max, .. } = spec.kind;
        let Some(n) = integral(self.given(spec, INT_TYPE)?) else {
            self.fail_with(spec.name, INT_TYPE.kind, INT_TYPE.msg);
            return None;
        };
        if n < min {
            let msg = format!("Input should be greater than or equal to {min}");
            self.out_of_bounds(spec, "greater_than_equal", msg);
            return None;
        }
        if n > max {
            let msg = format!("Input should be less than or equal to {max}");
            self.out_of_bounds(spec, "less_than_equal", msg);
            return None;
        }
        Some(n)
    }

    /// A finite number field within its bounds.
    pub fn read_number(&mut self, spec: &Spec<Number>) -> Option<f64> {
        let Some(n) = self
            .given(spec, FLOAT_TYPE)?
            .as_f64()
            .filter(|n| n.is_finite())
        else {
            self.fail_with(spec.name, FLOAT_TYPE.kind, FLOAT_TYPE.msg);
            return None;
        };
        if let Some(min) = spec.kind.min.filter(|min| n < *min) {
            let msg = format!("Input should be greater than or equal to {min}");
            self.out_of_bounds(spec, "greater_than_equal", msg);
            return None;
        }
        if let Some(bound) = spec.kind.above.filter(|bound| n <= *bound) {
            let msg = format!("Input should be greater than {bound}");
            self.out_of_bounds(spec, "greater_than", msg);
            return None;
        }
        Some(n)
    }

    /// A boolean field.
    pub fn read_bool(&mut self, spec: &Spec<Boolean>) -> Option<bool> {
        match self.given(spec, BOOL_TYPE)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.fail_with(spec.name, BOOL_TYPE.kind, BOOL_TYPE.msg);
                None
            }
        }
    }

    /// An object field (its shape, if any, is read by the caller).
    pub fn read_object(&mut self, spec: &Spec<Object>) -> Option<serde_json::Map<String, Value>> {
        match self.given(spec, DICT_TYPE)? {
            Value::Object(map) => Some(map.clone()),
            _ => {
                self.fail_with(spec.name, DICT_TYPE.kind, DICT_TYPE.msg);
                None
            }
        }
    }

    /// A list of strings.
    pub fn read_strings(&mut self, spec: &Spec<List>) -> Option<Vec<String>> {
        self.given(spec, LIST_TYPE)?;
        let items = self.strings(spec.name)?;
        self.check_items(spec, items.len()).then_some(items)
    }

    /// A list of UUIDs.
    pub fn read_uuids(&mut self, spec: &Spec<List>) -> Option<Vec<uuid::Uuid>> {
        self.given(spec, LIST_TYPE)?;
        let ids = self.uuids(spec.name)?;
        self.check_items(spec, ids.len()).then_some(ids)
    }

    fn check_items(&mut self, spec: &Spec<List>, len: usize) -> bool {
        match spec.kind.max_items {
            Some(max) if len > max => {
                let msg = format!("List should have at most {max} items, not {len}");
                self.out_of_bounds(spec, "too_long", msg);
                false
            }
            _ => true,
        }
    }

    /// A timestamp field.
    pub fn read_timestamp(
        &mut self,
        spec: &Spec<Timestamp>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.given(spec, STRING_TYPE)?;
        self.timestamp(spec.name)
    }

    /// A field naming one of its choices.
    pub fn read_choice(&mut self, spec: &Spec<Choice>) -> Option<&'static str> {
        let Value::String(text) = self.given(spec, STRING_TYPE)? else {
            self.fail_with(spec.name, STRING_TYPE.kind, STRING_TYPE.msg);
            return None;
        };
        let found = (spec.kind.values)().into_iter().find(|v| v == text);
        if found.is_none() {
            let msg = format!("Input should be {}", spec.kind.allowed);
            self.fail_with(spec.name, "enum", msg);
        }
        found
    }

    /// Records an error when a refused key holds a value.
    pub fn read_refused(&mut self, spec: &Spec<Refused>) {
        if self.object.get(spec.name).is_some_and(|v| !v.is_null()) {
            let Invalid { kind, msg } = spec.error.unwrap_or(Invalid {
                kind: "not_allowed",
                msg: "This field is not taken here",
            });
            self.fail_with(spec.name, kind, msg);
        }
    }
}

/// An integer, also when written with a zero fraction (`3.0`): JSON Schema counts that as an
/// integer, and so did the original service.
fn integral(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let n = value.as_f64().filter(|n| n.fract() == 0.0)?;
    // Beyond i64, the bound checks would misread a saturated cast.
    (n >= i64::MIN as f64 && n < i64::MAX as f64).then_some(n as i64)
}

const STRING_TYPE: Invalid = Invalid {
    kind: "string_type",
    msg: "Input should be a valid string",
};
const INT_TYPE: Invalid = Invalid {
    kind: "int_type",
    msg: "Input should be a valid integer",
};
const FLOAT_TYPE: Invalid = Invalid {
    kind: "float_type",
    msg: "Input should be a valid number",
};
const BOOL_TYPE: Invalid = Invalid {
    kind: "bool_type",
    msg: "Input should be a valid boolean",
};
const DICT_TYPE: Invalid = Invalid {
    kind: "dict_type",
    msg: "Input should be a valid dictionary",
};
const LIST_TYPE: Invalid = Invalid {
    kind: "list_type",
    msg: "Input should be a valid list",
};

/// Checks for tests elsewhere: that a rendered schema's bounds are the ones its validator
/// enforces, and that a format's pattern gives the answers of its check.
#[cfg(test)]
pub(crate) mod conformance {
    use serde_json::{Map, Value, json};

    use super::{FieldError, Format, NUL_FREE};

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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
