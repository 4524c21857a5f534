//! `GET /api/v1/facts` (the list with every filter) and `GET /api/v1/tags`.
//!
//! The original service's parameters (`q`, `tag`, `limit`, `offset`) behave as the contract
//! says; the rest are additions: full-text `search`, `any_tag`, `meta.<key>`, `created_after`
//! and `created_before`, keyset paging with `cursor`, and `count` to trade the exact total for
//! speed on large result sets.

use axum::{Json, extract::State};
use serde::Serialize;
use serde_json::Value;
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::{LIMIT, OFFSET, QueryParams},
};
use crate::{
    model::{Cursor, Fact},
    store::{CountMode, FactPage, FactQuery, MetaFilter, TagCount},
    validate::{
        limits,
        spec::{self, Choice, Format, Integer, Invalid, List, Spec, Text, Timestamp},
    },
};

/// A fact in a list, with its rank when the list was a full-text search.
#[derive(Serialize, ToSchema)]
pub struct ListedFact {
    #[serde(flatten)]
    fact: Fact,
    #[serde(skip_serializing_if = "Option::is_none")]
    rank: Option<f32>,
}

/// A page of facts, newest first (by rank first with `search`).
#[derive(Serialize, ToSchema)]
pub struct FactList {
    /// Facts matching the filters, before paging; null with `count=none`.
    total: Option<i64>,
    items: Vec<ListedFact>,
    /// Pass as `cursor` for the next page; absent on the last page and with `search`.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// Present (true) when `total` is an estimate (`count=estimate` over a large result).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    total_is_estimate: bool,
}

/// The query parameters of `GET /api/v1/facts`. Besides these, `meta.<key>=<value>` keeps the
/// facts whose top-level metadata key holds the value (JSON when it parses as JSON, else a
/// string; objects and arrays match by containment).
pub struct FactListParams;

const Q: Spec<Text> = spec::text(
    "q",
    "Case-insensitive substring of the text or of the metadata as JSON; `%`, `_` and `\\` are literal.",
)
.stored();
const SEARCH: Spec<Text> = spec::text(
    "search",
    "Full-text search (stemmed words; `\"quoted phrase\"`, `or`, `-excluded`), ranked.",
)
.stored();
const TAG: Spec<List> = spec::strings(
    "tag",
    "Only facts carrying this tag (exact, case-sensitive); repeat it to require several.",
)
.max_items(limits::MAX_QUERY_VALUES)
.stored();
const ANY_TAG: Spec<List> = spec::strings(
    "any_tag",
    "Only facts carrying at least one of these tags; repeat it for several.",
)
.max_items(limits::MAX_QUERY_VALUES)
.stored();
const CREATED_AFTER: Spec<Timestamp> =
    spec::timestamp("created_after", "Only facts created after this time.");
const CREATED_BEFORE: Spec<Timestamp> =
    spec::timestamp("created_before", "Only facts created before this time.");
const CURSOR: Spec<Text> = spec::text(
    "cursor",
    "Continue after the previous page's `next_cursor` (stable while facts are added); not with `search`.",
)
.format(CURSOR_FORMAT);
/// A `next_cursor` of the fact or task list.
pub(super) const CURSOR_FORMAT: Format = Format {
    // Microseconds since the epoch, then the id in any form a UUID parses from. Eighteen digits
    // reach beyond year 30,000; the 19-digit times the check also takes are left out.
    pattern: "^[+-]?0*[0-9]{1,18}_(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|\\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\\}|urn:uuid:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$",
    check: is_cursor,
    invalid: Invalid {
        kind: "enum",
        msg: "Input should be a next_cursor from an earlier page",
    },
};
pub(super) const COUNT: Spec<Choice> = spec::choice(
    "count",
    count_names,
    "one of exact, estimate, none",
    "`exact` (default), `estimate` (exact up to 10,000, the planner's estimate beyond) or `none`.",
);

fn is_cursor(text: &str) -> bool {
    Cursor::decode(text).is_some()
}

fn count_names() -> Vec<&'static str> {
    vec!["exact", "estimate", "none"]
}

impl IntoParams for FactListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[
            &Q,
            &SEARCH,
            &TAG,
            &ANY_TAG,
            &CREATED_AFTER,
            &CREATED_BEFORE,
            &CURSOR,
            &COUNT,
            &LIMIT,
            &OFFSET,
        ])
    }
}

#[utoipa::path(
    get, path = "/facts", tag = "facts",
    params(FactListParams),
    responses(
        (status = 200, description = "Facts, newest first", body = FactList),
        (status = 422, description = "A parameter is out of range or malformed", body = ValidationErrors),
        (status = 501, description = "The store cannot run this query", body = ErrorBody),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_facts(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<FactList>, ApiError> {
    let query = fact_query(&mut params);
    params.finish()?;
    let page = state
        .store
        .search_facts(&query)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(list(page)))
}

fn fact_query(params: &mut QueryParams) -> FactQuery {
    let query = FactQuery {
        q: params.stored_text(&Q),
        search: params.stored_text(&SEARCH),
        tags: params.stored_all(&TAG),
        any_tags: params.stored_all(&ANY_TAG),
        meta: meta_filters(params),
        created_after: params.timestamp(&CREATED_AFTER),
        created_before: params.timestamp(&CREATED_BEFORE),
        cursor: params
            .formatted(&CURSOR)
            .as_deref()
            .and_then(Cursor::decode),
        count: params
            .choice(&COUNT)
            .and_then(count_mode)
            .unwrap_or_default(),
        limit: params.integer(&LIMIT),
        offset: params.integer(&OFFSET),
    };
    if query.cursor.is_some() && query.search.is_some() {
        params.reject(
            "cursor",
            "cursor_with_search",
            "A cursor pages through the newest-first order; with search, use offset".into(),
        );
    }
    query
}

pub(super) fn count_mode(text: &str) -> Option<CountMode> {
    match text {
        "exact" => Some(CountMode::Exact),
        "estimate" => Some(CountMode::Estimate),
        "none" => Some(CountMode::None),
        _ => None,
    }
}

/// `meta.<key>=<value>` parameters. A value that parses as JSON is matched as that JSON; a
/// number or boolean also matches the same characters stored as a string, since a query string
/// cannot say which was meant.
fn meta_filters(params: &mut QueryParams) -> Vec<MetaFilter> {
    let mut filters = Vec::new();
    let given = params.prefixed("meta.");
    if given.len() > limits::MAX_QUERY_VALUES {
        let msg = format!(
            "At most {} meta.<key> filters per query, not {}",
            limits::MAX_QUERY_VALUES,
            given.len()
        );
        params.reject("meta", "too_long", msg);
        return filters;
    }
    for (key, raw) in given {
        if key.is_empty() || key.contains('\0') || raw.contains('\0') {
            params.reject(
                &format!("meta.{key}"),
                "meta_filter",
                "Expected meta.<key>=<value> with a non-empty key and no NUL character".into(),
            );
            continue;
        }
        filters.push(MetaFilter {
            values: meta_values(&raw),
            key,
        });
    }
    filters
}

/// The values a `meta.<key>` parameter's text may stand for.
fn meta_values(raw: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(s)) => vec![Value::String(s)],
        Ok(value @ (Value::Number(_) | Value::Bool(_))) => vec![value, Value::String(raw.into())],
        Ok(value) => vec![value],
        Err(_) => vec![Value::String(raw.into())],
    }
}

fn list(page: FactPage) -> FactList {
    FactList {
        total: page.total,
        items: page
            .items
            .into_iter()
            .map(|(fact, rank)| ListedFact { fact, rank })
            .collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
        total_is_estimate: page.total_estimated,
    }
}

/// Tags with how many facts carry each.
#[derive(Serialize, ToSchema)]
pub struct TagList {
    items: Vec<TagCount>,
}

/// The query parameters of `GET /api/v1/tags`.
pub struct TagListParams;

const PREFIX: Spec<Text> =
    spec::text("prefix", "Only tags starting with this (case-sensitive).").stored();
const TAG_LIMIT: Spec<Integer> =
    spec::integer("limit", 1, 10_000, "How many tags to list.").default(100);

impl IntoParams for TagListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[&PREFIX, &TAG_LIMIT])
    }
}

#[utoipa::path(
    get, path = "/tags", tag = "facts",
    params(TagListParams),
    responses(
        (status = 200, description = "Tags, most used first", body = TagList),
        (status = 422, description = "A parameter is out of range or malformed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_tags(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<TagList>, ApiError> {
    let prefix = params.stored_text(&PREFIX);
    let limit = params.integer(&TAG_LIMIT);
    params.finish()?;
    let items = state
        .store
        .tag_counts(prefix.as_deref(), limit)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(TagList { items }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::spec::conformance;
    use serde_json::json;

    #[test]
    fn meta_values_read_as_json_when_they_parse_and_numbers_also_match_as_text() {
        assert_eq!(meta_values("user_input"), vec![json!("user_input")]);
        assert_eq!(meta_values("\"5\""), vec![json!("5")]);
        assert_eq!(meta_values("5"), vec![json!(5), json!("5")]);
        assert_eq!(meta_values("true"), vec![json!(true), json!("true")]);
        assert_eq!(meta_values(r#"{"a":1}"#), vec![json!({"a": 1})]);
    }

    #[test]
    fn the_cursor_pattern_is_what_a_cursor_decodes_from() {
        conformance::assert_pattern_is_the_check(
            CURSOR.kind.format.as_ref().unwrap(),
            &[
                "1764331200123456_0f506afdbaf64874a64670a172736126",
                "-42_0f506afd-baf6-4874-a646-70a172736126",
                "+7_{0f506afd-baf6-4874-a646-70a172736126}",
                "0_urn:uuid:0f506afd-baf6-4874-a646-70a172736126",
            ],
        );
    }

    #[test]
    fn count_modes_parse_from_their_names() {
        assert_eq!(count_mode("estimate"), Some(CountMode::Estimate));
        assert_eq!(count_mode("EXACT"), None);
    }
}
