//! `GET /api/v1/facts` (the list with every filter) and `GET /api/v1/tags`.
//!
//! The original service's parameters (`q`, `tag`, `limit`, `offset`) behave as the contract
//! says; the rest are additions: full-text `search`, `any_tag`, `meta.<key>`, `created_after`
//! and `created_before`, keyset paging with `cursor`, and `count` to trade the exact total for
//! speed on large result sets.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, extract::QueryParams};
use crate::{
    model::{Fact, FactCursor},
    store::{CountMode, FactPage, FactQuery, MetaFilter, TagCount},
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

/// Query parameters of `GET /api/v1/facts`.
// Documentation only: `list_facts` reads the query with `QueryParams`.
#[derive(Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct FactListParams {
    /// Case-insensitive substring of the text or of the metadata as JSON; `%`, `_` and `\`
    /// are literal.
    q: Option<String>,
    /// Full-text search (stemmed words; `"quoted phrase"`, `or`, `-excluded`), ranked.
    search: Option<String>,
    /// Only facts carrying this tag (exact, case-sensitive); repeat it to require several.
    tag: Option<Vec<String>>,
    /// Only facts carrying at least one of these tags; repeat it for several.
    any_tag: Option<Vec<String>>,
    /// `meta.<key>=<value>`: the top-level metadata key holds the value (JSON when it parses as
    /// JSON, else a string; objects and arrays match by containment).
    #[param(rename = "meta.<key>")]
    meta: Option<String>,
    /// Only facts created after this RFC 3339 time.
    created_after: Option<String>,
    /// Only facts created before this RFC 3339 time.
    created_before: Option<String>,
    /// Continue after the previous page's `next_cursor` (stable while facts are added).
    cursor: Option<String>,
    /// `exact` (default), `estimate` (exact up to 10,000, the planner's estimate beyond) or
    /// `none`.
    count: Option<String>,
    /// 1..=1000, default 100.
    limit: Option<i64>,
    /// At least 0, default 0.
    offset: Option<i64>,
}

#[utoipa::path(
    get, path = "/facts", tag = "facts",
    params(FactListParams),
    responses(
        (status = 200, description = "Facts, newest first", body = FactList),
        (status = 422, description = "A parameter is out of range or malformed"),
        (status = 501, description = "The store cannot run this query"),
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
        q: params.stored_text("q"),
        search: params.stored_text("search"),
        tags: params.stored_all("tag"),
        any_tags: params.stored_all("any_tag"),
        meta: meta_filters(params),
        created_after: params.timestamp("created_after"),
        created_before: params.timestamp("created_before"),
        cursor: params.choice(
            "cursor",
            FactCursor::decode,
            "a next_cursor from an earlier page",
        ),
        count: params
            .choice("count", count_mode, "one of exact, estimate, none")
            .unwrap_or_default(),
        limit: params.integer("limit", 1, 1000, 100),
        offset: params.integer("offset", 0, i64::MAX, 0),
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

fn count_mode(text: &str) -> Option<CountMode> {
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
    for (key, raw) in params.prefixed("meta.") {
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

/// Query parameters of `GET /api/v1/tags`.
// Documentation only: `list_tags` reads the query with `QueryParams`.
#[derive(Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct TagListParams {
    /// Only tags starting with this (case-sensitive).
    prefix: Option<String>,
    /// 1..=10000, default 100.
    limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/tags", tag = "facts",
    params(TagListParams),
    responses(
        (status = 200, description = "Tags, most used first", body = TagList),
        (status = 422, description = "A parameter is out of range or malformed"),
    )
)]
pub async fn list_tags(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<TagList>, ApiError> {
    let prefix = params.stored_text("prefix");
    let limit = params.integer("limit", 1, 10_000, 100);
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
    fn count_modes_parse_from_their_names() {
        assert_eq!(count_mode("estimate"), Some(CountMode::Estimate));
        assert_eq!(count_mode("EXACT"), None);
    }
}
