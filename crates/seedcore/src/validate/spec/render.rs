//! How a spec reads in the OpenAPI document: JSON Schemas for bodies, parameters for query
//! strings and paths. Nothing here decides what is valid; it only states what the specs say.

use serde_json::Value;
use utoipa::openapi::{
    AllOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type,
    path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle},
    schema::{AdditionalProperties, AnyOfBuilder, SchemaType},
};

use super::{
    Boolean, Choice, Documented, Integer, Kind, List, NUL_FREE, Number, Object, Refused, Text,
    Timestamp,
};

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
            .exclusive_minimum(self.above)
            .maximum(self.max);
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
    fn max_items(&self) -> Option<usize> {
        self.max_items
    }

    fn schema(&self, stored: bool, nullable: bool, doc: &str) -> Schema {
        let item = if self.uuids {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        } else {
            let pattern = match self.item_format {
                Some(format) => Some(format.pattern),
                None => stored.then_some(NUL_FREE),
            };
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(self.max_item_chars)
                .pattern(pattern)
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
        let doc = match self.within_days {
            Some(days) => format!("{doc} At most {days} days from now, either way.")
                .trim_start()
                .to_string(),
            None => doc.to_string(),
        };
        let doc = doc.as_str();
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
            let doc = match (field.doc(), field.max_items()) {
                (Some(doc), Some(max)) => Some(format!("{doc} At most {max} values.")),
                (None, Some(max)) => Some(format!("At most {max} values.")),
                (doc, None) => doc,
            };
            ParameterBuilder::new()
                .name(field.name())
                .parameter_in(ParameterIn::Query)
                .required(utoipa::openapi::Required::False)
                .style(Some(ParameterStyle::Form))
                .explode(Some(true))
                .description(doc)
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
