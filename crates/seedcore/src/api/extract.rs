//! Request extraction with the contract's error shapes: JSON bodies (422 for malformed JSON or
//! a non-object, 413 over the size limit, chunked bodies counted the same) and query strings
//! (422 naming the parameter, its bound and what was sent).

use axum::{
    body::Body,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header::CONTENT_LENGTH, request::Parts},
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use utoipa::{
    IntoParams,
    openapi::path::{Parameter, ParameterIn},
};

use super::{AppState, error::ApiError};
use crate::{
    auth::Caller,
    model::{Actor, IdRef},
    validate::{
        FieldError, NUL_KIND, NUL_MSG, limits,
        spec::{self, Choice, Format, Integer, Invalid, List, Spec, Text, Timestamp},
    },
};

/// A request body that is a JSON object.
pub struct JsonObject(pub Map<String, Value>);

/// A bulk request body: a JSON object, under the (larger) bulk size limit.
pub struct BulkJsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_object(req, state.settings.max_body_bytes)
            .await
            .map(JsonObject)
    }
}

impl FromRequest<AppState> for BulkJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_object(req, state.settings.max_bulk_body_bytes)
            .await
            .map(BulkJsonObject)
    }
}

async fn read_object(req: Request, limit: usize) -> Result<Map<String, Value>, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let bytes = read_limited(req.into_body(), limit).await?;
    parse_object(&bytes)
}

async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::invalid(&["body"], "body_read", "The request body could not be read")
        }
    })
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(&["body"], "missing", "Field required"));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid(
            &["body"],
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )),
        Err(err) => Err(ApiError::Validation(vec![FieldError::new(
            vec![json!("body"), json!(err.column())],
            "json_invalid",
            format!("JSON decode error: {err}"),
        )])),
    }
}

/// Most items one bulk request carries.
pub const MAX_BULK: usize = 10_000;

/// The list under `key` of a bulk body, each item checked by `item`: every problem is
/// reported at `["body", key, index, …]`, and any problem refuses the whole list, so that a
/// bulk request is stored entirely or not at all.
pub fn bulk_items<T>(
    body: &Map<String, Value>,
    key: &str,
    item: impl Fn(&Map<String, Value>) -> Result<T, Vec<FieldError>>,
) -> Result<Vec<T>, ApiError> {
    bulk_items_up_to(body, key, MAX_BULK, item)
}

/// [`bulk_items`] with a list of at most `max` items.
pub fn bulk_items_up_to<T>(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
    item: impl Fn(&Map<String, Value>) -> Result<T, Vec<FieldError>>,
) -> Result<Vec<T>, ApiError> {
    let items = match body.get(key) {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid(
                &["body", key],
                "list_type",
                "Input should be a valid list",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                &["body", key],
                "missing",
                "Field required",
            ));
        }
    };
    if items.is_empty() || items.len() > max {
        return Err(ApiError::invalid(
            &["body", key],
            "list_length",
            format!("The list should hold 1 to {max} {key}, not {}", items.len()),
        ));
    }
    let mut good = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, value) in items.iter().enumerate() {
        let at = |e: FieldError| e.under_index(i).under(key).under("body");
        match value.as_object().map(&item) {
            Some(Ok(checked)) => good.push(checked),
            Some(Err(item_errors)) => errors.extend(item_errors.into_iter().map(at)),
            None => errors.push(at(FieldError::new(
                vec![],
                "dict_type",
                "Input should be a valid dictionary",
            ))),
        }
    }
    if errors.is_empty() {
        Ok(good)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// A task or fact id as a path takes it: a UUID (any case; hyphenated, simple, braced or URN
/// form) or a prefix of 4 to 35 hexadecimal digits and hyphens.
pub const ID_OR_PREFIX: Format = Format {
    pattern: "^(?:[0-9A-Fa-f-]{4,35}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|\\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\\}|urn:uuid:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$",
    check: is_id_or_prefix,
    invalid: Invalid {
        kind: "uuid_parsing",
        msg: "Input should be a UUID or a prefix of 4 to 35 hexadecimal digits and hyphens",
    },
};

fn is_id_or_prefix(text: &str) -> bool {
    IdRef::parse(text).is_ok()
}

/// Declares an extractor for an id path segment, kept as sent, and its OpenAPI parameter.
/// Percent-escapes that do not decode to UTF-8 cannot be an id either, so they get the 422 of
/// any malformed id rather than axum's plain-text 400.
macro_rules! path_id {
    ($name:ident, $param:literal, $doc:literal) => {
        #[doc = concat!("The `{", $param, "}` path segment as sent.")]
        pub struct $name(pub String);

        impl $name {
            /// What the segment accepts.
            pub const SPEC: Spec<Text> = spec::text($param, $doc).required().format(ID_OR_PREFIX);
        }

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                match axum::extract::Path::<String>::from_request_parts(parts, state).await {
                    Ok(axum::extract::Path(raw)) => Ok($name(raw)),
                    Err(_) => Err(ApiError::invalid(
                        &["path", $param],
                        ID_OR_PREFIX.invalid.kind,
                        ID_OR_PREFIX.invalid.msg,
                    )),
                }
            }
        }

        impl IntoParams for $name {
            fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                vec![spec::path_parameter(&Self::SPEC)]
            }
        }
    };
}

path_id!(
    TaskIdPath,
    "task_id",
    "A task id, or a prefix of one (4 to 35 hexadecimal digits and hyphens) that only one task starts with."
);
path_id!(
    FactIdPath,
    "fact_id",
    "A fact id, or a prefix of one (4 to 35 hexadecimal digits and hyphens) that only one fact starts with."
);

/// A whole UUID, as the paths of schedules and workflows take it (no prefixes).
pub const WHOLE_ID: Spec<Text> = spec::text("id", "A whole id (a UUID).").required().format(Format {
    pattern: "^(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|\\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\\}|urn:uuid:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$",
    check: is_uuid,
    invalid: Invalid {
        kind: "uuid_parsing",
        msg: "Input should be a valid UUID",
    },
});

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok()
}

/// Most items a page of a list holds.
pub const LIMIT: Spec<Integer> =
    spec::integer("limit", 1, 1000, "How many items the page holds.").default(100);
/// How many items a page skips.
pub const OFFSET: Spec<Integer> =
    spec::integer("offset", 0, i64::MAX, "How many items to skip.").default(0);

/// The query string as name/value pairs, read with the contract's rules: an empty value means
/// the parameter was not given, and errors are collected so all are reported at once.
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|_| {
            ApiError::invalid(
                &["query"],
                "query_parsing",
                "The query string could not be parsed",
            )
        })?;
        if pairs.len() > limits::MAX_QUERY_PAIRS {
            return Err(ApiError::invalid(
                &["query"],
                "too_long",
                format!(
                    "A query string should hold at most {} parameters, not {}",
                    limits::MAX_QUERY_PAIRS,
                    pairs.len()
                ),
            ));
        }
        Ok(QueryParams {
            pairs,
            errors: Vec::new(),
        })
    }
}

impl QueryParams {
    fn fail(&mut self, name: &str, kind: &'static str, msg: String) {
        self.errors.push(FieldError::new(
            vec![json!("query"), json!(name)],
            kind,
            msg,
        ));
    }

    /// The last non-empty value of `name`.
    pub fn text(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    }

    /// Like [`QueryParams::text`], for a value compared with stored text: PostgreSQL text cannot
    /// hold U+0000, so such a value is refused here rather than failing in the database.
    pub fn stored_text(&mut self, spec: &Spec<Text>) -> Option<String> {
        let value = self.text(spec.name)?;
        if value.contains('\0') {
            self.fail(spec.name, NUL_KIND, NUL_MSG.into());
            return None;
        }
        Some(value)
    }

    /// Every non-empty value of a list parameter, in order, refusing U+0000 as
    /// [`QueryParams::stored_text`] does.
    pub fn stored_all(&mut self, spec: &Spec<List>) -> Vec<String> {
        let values = self.all(spec.name);
        if let Some(max) = spec.kind.max_items.filter(|max| values.len() > *max) {
            let msg = format!(
                "At most {max} values of '{}' per query, not {}",
                spec.name,
                values.len()
            );
            self.fail(spec.name, "too_long", msg);
            return Vec::new();
        }
        if values.iter().any(|v| v.contains('\0')) {
            self.fail(spec.name, NUL_KIND, NUL_MSG.into());
            return Vec::new();
        }
        values
    }

    /// Every non-empty parameter whose name starts with `prefix`, as (rest of the name, value).
    pub fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
            .collect()
    }

    /// An RFC 3339 timestamp, e.g. `2026-11-28T12:00:00Z`.
    pub fn timestamp(&mut self, spec: &Spec<Timestamp>) -> Option<DateTime<Utc>> {
        let name = spec.name;
        let raw = self.text(name)?;
        match DateTime::parse_from_rfc3339(raw.trim()) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                self.fail(
                    name,
                    "datetime_parsing",
                    format!("Input should be an RFC 3339 timestamp such as 2026-11-28T12:00:00Z (got '{raw}')"),
                );
                None
            }
        }
    }

    /// Records a problem with `name` found by the caller.
    pub fn reject(&mut self, name: &str, kind: &'static str, msg: String) {
        self.fail(name, kind, msg);
    }

    /// Every non-empty value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// An integer within the spec's bounds, or its default when not given.
    pub fn integer(&mut self, spec: &Spec<Integer>) -> i64 {
        let Integer { min, max, default } = spec.kind;
        let (name, default) = (spec.name, default.unwrap_or(min));
        let Some(raw) = self.text(name) else {
            return default;
        };
        match raw.trim().parse::<i64>() {
            Err(_) => self.fail(
                name,
                "int_parsing",
                format!("Input should be a valid integer, unable to parse string as an integer (got '{raw}')"),
            ),
            Ok(n) if n < min => self.fail(
                name,
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
            ),
            Ok(n) if n > max => self.fail(
                name,
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
            ),
            Ok(n) => return n,
        }
        default
    }

    /// A value that must be one of the spec's choices.
    pub fn choice(&mut self, spec: &Spec<Choice>) -> Option<&'static str> {
        let raw = self.text(spec.name)?;
        let found = (spec.kind.values)().into_iter().find(|v| *v == raw);
        if found.is_none() {
            let allowed = spec.kind.allowed;
            self.fail(
                spec.name,
                "enum",
                format!("Input should be {allowed} (got '{raw}')"),
            );
        }
        found
    }

    /// A text that must pass the spec's format.
    pub fn formatted(&mut self, spec: &Spec<Text>) -> Option<String> {
        let raw = self.stored_text(spec)?;
        let format = spec.kind.format?;
        if !(format.check)(&raw) {
            let msg = format!("{} (got '{raw}')", format.invalid.msg);
            self.fail(spec.name, format.invalid.kind, msg);
            return None;
        }
        Some(raw)
    }

    /// Ok when every parameter read so far was valid.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Who is calling, for the audit trail: the token's name when the request carried one (the
/// `auth` layer put its [`Caller`] on the request), anonymous otherwise.
pub struct CallerActor(pub Actor);

impl<S: Sync> FromRequestParts<S> for CallerActor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CallerActor(match parts.extensions.get::<Caller>() {
            Some(caller) => Actor::token(&caller.name),
            None => Actor::anonymous(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::spec::conformance;

    #[test]
    fn the_id_path_pattern_is_what_an_id_path_takes() {
        let id = "0f506afd-baf6-4874-a646-70a172736126";
        conformance::assert_pattern_is_the_check(
            &ID_OR_PREFIX,
            &[
                id,
                "0F506AFDBAF64874A64670A172736126",
                "{0f506afd-baf6-4874-a646-70a172736126}",
                "urn:uuid:0f506afd-baf6-4874-a646-70a172736126",
                "abcd",
            ],
        );
    }

    #[test]
    fn the_whole_id_pattern_is_what_a_uuid_parses_from() {
        conformance::assert_pattern_is_the_check(
            WHOLE_ID.kind.format.as_ref().unwrap(),
            &[
                "0f506afd-baf6-4874-a646-70a172736126",
                "0F506AFDBAF64874A64670A172736126",
                "{0f506afd-baf6-4874-a646-70a172736126}",
                "urn:uuid:0f506afd-baf6-4874-a646-70a172736126",
            ],
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_with_the_body_location() {
        let Err(ApiError::Validation(errors)) = parse_object(b"[1, 2]") else {
            panic!("expected a validation error")
        };
        assert_eq!(errors[0].loc, vec![json!("body")]);
        assert_eq!(errors[0].kind, "model_attributes_type");
    }

    #[test]
    fn malformed_json_is_a_json_invalid_error() {
        let Err(ApiError::Validation(errors)) = parse_object(b"{\"type\": ") else {
            panic!("expected a validation error")
        };
        assert_eq!(errors[0].kind, "json_invalid");
    }

    #[test]
    fn an_empty_body_is_missing() {
        let Err(ApiError::Validation(errors)) = parse_object(b"  ") else {
            panic!("expected a validation error")
        };
        assert_eq!(errors[0].kind, "missing");
    }

    #[test]
    fn query_integers_fall_back_to_the_default_when_empty_and_report_bounds() {
        let mut params = QueryParams {
            pairs: vec![("limit".into(), "".into()), ("offset".into(), "-1".into())],
            errors: vec![],
        };
        assert_eq!(params.integer(&LIMIT), 100);
        params.integer(&OFFSET);
        let Err(ApiError::Validation(errors)) = params.finish() else {
            panic!("expected a validation error")
        };
        assert_eq!(errors[0].loc, vec![json!("query"), json!("offset")]);
        assert_eq!(errors[0].kind, "greater_than_equal");
    }

    mod properties {
        use axum::http::Request;
        use proptest::prelude::*;

        use super::*;
        use crate::validate::limits::MAX_QUERY_PAIRS;

        const TAGS: Spec<List> = spec::strings("tag", "").max_items(3);
        const WHEN: Spec<Timestamp> = spec::timestamp("when", "");

        /// Reads a raw query string as the API's extractor does.
        fn read(raw: &str) -> Result<QueryParams, ApiError> {
            let request = Request::builder()
                .uri(format!("/x?{raw}"))
                .body(())
                .map_err(|_| ApiError::invalid(&["query"], "uri", "not a URI"))?;
            let (mut parts, ()) = request.into_parts();
            futures::executor::block_on(QueryParams::from_request_parts(&mut parts, &()))
        }

        fn a_query() -> impl Strategy<Value = String> {
            let name = prop_oneof![
                Just("limit".to_string()),
                Just("offset".to_string()),
                Just("tag".to_string()),
                Just("when".to_string()),
                "[a-z]{0,3}",
            ];
            let value = prop_oneof!["\\PC{0,8}", "-?[0-9]{0,20}", Just("\0".to_string())];
            prop_oneof![
                3 => proptest::collection::vec((name, value), 0..8)
                    .prop_map(|pairs| serde_urlencoded::to_string(pairs).unwrap()),
                1 => "[ -~]{0,30}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_query_string_reads_within_every_bound_or_names_what_is_wrong(raw in a_query()) {
                let Ok(mut params) = read(&raw) else {
                    return Ok(());
                };
                let limit = params.integer(&LIMIT);
                let offset = params.integer(&OFFSET);
                let tags = params.stored_all(&TAGS);
                params.timestamp(&WHEN);
                prop_assert!((1..=1000).contains(&limit));
                prop_assert!(offset >= 0);
                prop_assert!(tags.len() <= 3);
                prop_assert!(tags.iter().all(|t| !t.is_empty() && !t.contains('\0')));
                if let Err(ApiError::Validation(errors)) = params.finish() {
                    for error in errors {
                        let name = error.loc[1].as_str().unwrap_or_default().to_string();
                        prop_assert!(["limit", "offset", "tag", "when"].contains(&name.as_str()));
                        prop_assert!(raw.contains(&name), "{raw}: {name}");
                    }
                }
            }

            #[test]
            fn a_query_string_of_too_many_pairs_is_refused_whole(extra in 1usize..50) {
                let raw = vec!["a=1"; MAX_QUERY_PAIRS + extra].join("&");
                let Err(ApiError::Validation(errors)) = read(&raw) else {
                    return Err(TestCaseError::fail("taken"));
                };
                prop_assert_eq!(errors[0].kind, "too_long");
                let pairs = vec!["a=1"; MAX_QUERY_PAIRS].join("&");
                prop_assert!(read(&pairs).is_ok());
            }
        }
    }
}
