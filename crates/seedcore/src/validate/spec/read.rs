//! Reading input through a spec: the checks a spec states, made on a JSON object's fields, each
//! failure recorded in FastAPI's shape.

use serde_json::Value;

use super::{
    Boolean, Choice, Integer, Invalid, List, Number, Object, Refused, Spec, Text, Timestamp,
};
use crate::validate::{
    FieldError, Fields,
    limits::{self, thousands},
};

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
        let max = match spec.size {
            Some(size) => Some(size.of(&limits::current())),
            None => rule.max_chars,
        };
        if let Some(max) = max.filter(|max| chars > *max) {
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
        if let Some(max) = spec.kind.max.filter(|max| n > *max) {
            let msg = format!("Input should be less than or equal to {max}");
            self.out_of_bounds(spec, "less_than_equal", msg);
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
            Value::Object(map) => {
                let map = map.clone();
                self.check_size(spec, &map).then_some(map)
            }
            _ => {
                self.fail_with(spec.name, DICT_TYPE.kind, DICT_TYPE.msg);
                None
            }
        }
    }

    /// Whether an object is within its spec's size, recording an error when it is not.
    fn check_size<K>(&mut self, spec: &Spec<K>, map: &serde_json::Map<String, Value>) -> bool {
        let Some(size) = spec.size else {
            return true;
        };
        let cap = size.of(&limits::current());
        if limits::json_bytes_up_to(map, cap) <= cap {
            return true;
        }
        let msg = format!(
            "Should be at most {} {} (set by {})",
            thousands(cap),
            size.unit(),
            size.setting()
        );
        self.fail_with(spec.name, "too_large", msg);
        false
    }

    /// A list of strings.
    pub fn read_strings(&mut self, spec: &Spec<List>) -> Option<Vec<String>> {
        self.given(spec, LIST_TYPE)?;
        let items = self.strings(spec.name)?;
        let counted = self.check_items(spec, items.len());
        (counted && self.check_item_chars(spec, &items)).then_some(items)
    }

    fn check_item_chars(&mut self, spec: &Spec<List>, items: &[String]) -> bool {
        let Some(max) = spec.kind.max_item_chars else {
            return true;
        };
        let mut fine = true;
        for (i, item) in items.iter().enumerate() {
            if item.chars().count() > max {
                self.errors.push(FieldError::new(
                    vec![Value::from(spec.name), Value::from(i)],
                    "string_too_long",
                    format!("String should have at most {max} characters"),
                ));
                fine = false;
            }
        }
        fine
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
        let at = self.timestamp(spec.name)?;
        let Some(days) = spec.kind.within_days else {
            return Some(at);
        };
        let now = chrono::Utc::now();
        let horizon = chrono::Duration::days(days);
        if (at - now).abs() > horizon {
            let msg = format!(
                "Input should be at most {days} days from now, either way: between {} and {}",
                (now - horizon).format("%Y-%m-%dT%H:%M:%SZ"),
                (now + horizon).format("%Y-%m-%dT%H:%M:%SZ"),
            );
            self.fail_with(spec.name, "datetime_range", msg);
            return None;
        }
        Some(at)
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
