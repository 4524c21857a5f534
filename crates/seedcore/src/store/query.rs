//! The types a caller passes to and gets from the store's reads: pages, the task and fact list
//! queries with their filters, tag counts, and the escaping of literal LIKE patterns.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::model::{Fact, FactCursor, TaskStatus};

/// One page of a list and the number of rows matching before paging.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// Rows matching the filters, whatever `limit` and `offset` say.
    pub total: i64,
    /// The rows of this page, in the list's order.
    pub items: Vec<T>,
}

/// Filters and paging for the task list.
#[derive(Clone, Debug, Default)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this type.
    pub task_type: Option<String>,
    /// Only tasks in this domain.
    pub domain: Option<String>,
    /// Most tasks to return; the list is newest first.
    pub limit: i64,
    /// Tasks to skip before the page starts.
    pub offset: i64,
}

impl TaskQuery {
    /// The list's `where` clause, the same on both backends.
    pub(crate) fn push_filters<DB>(&self, builder: &mut QueryBuilder<DB>)
    where
        DB: Database,
        for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    {
        builder.push(" where true");
        if let Some(status) = self.status {
            builder.push(" and status = ").push_bind(status.as_str());
        }
        if let Some(task_type) = &self.task_type {
            builder.push(" and type = ").push_bind(task_type.as_str());
        }
        if let Some(domain) = &self.domain {
            builder.push(" and domain = ").push_bind(domain.as_str());
        }
    }
}

/// Filters and paging for the fact list.
#[derive(Clone, Debug, Default)]
pub struct FactQuery {
    /// Case-insensitive substring of the text or of the metadata as JSON text; taken literally.
    pub q: Option<String>,
    /// Full-text search (stemmed words, ranked); results are ordered by rank.
    pub search: Option<String>,
    /// The fact carries every one of these tags.
    pub tags: Vec<String>,
    /// The fact carries at least one of these tags.
    pub any_tags: Vec<String>,
    /// Each filter must match a top-level metadata key.
    pub meta: Vec<MetaFilter>,
    /// Only facts created strictly after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Only facts created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// Continue after this position of the newest-first order (keyset paging).
    pub cursor: Option<FactCursor>,
    /// How `total` is counted; exactly by default.
    pub count: CountMode,
    /// Most facts to return.
    pub limit: i64,
    /// Facts to skip before the page starts.
    pub offset: i64,
}

impl FactQuery {
    /// Whether the query uses more than the original service's `q`, `tag`, `limit`, `offset`.
    pub fn is_extended(&self) -> bool {
        self.search.is_some()
            || !self.any_tags.is_empty()
            || !self.meta.is_empty()
            || self.created_after.is_some()
            || self.created_before.is_some()
            || self.cursor.is_some()
            || self.count != CountMode::Exact
    }
}

/// `meta.<key>=<value>`: the metadata's `key` holds (contains, for objects and arrays) one of
/// `values`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaFilter {
    /// The top-level metadata key.
    pub key: String,
    /// Accepted values; the filter matches when any one of them does.
    pub values: Vec<Value>,
}

/// How the total of a fact list is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CountMode {
    /// Every match is counted (the contract's behaviour).
    #[default]
    Exact,
    /// The planner's estimate when it expects more than [`ESTIMATE_EXACT_UP_TO`] matches;
    /// otherwise counted exactly, up to that many (an estimate beyond).
    Estimate,
    /// No total.
    None,
}

/// With `count=estimate`, totals up to this are still counted exactly.
pub const ESTIMATE_EXACT_UP_TO: i64 = 10_000;

/// A page of facts with what the extended list reports.
#[derive(Clone, Debug, PartialEq)]
pub struct FactPage {
    /// None with `count=none`.
    pub total: Option<i64>,
    /// True when `total` is the planner's estimate.
    pub total_estimated: bool,
    /// Each fact with its full-text rank when the query searched.
    pub items: Vec<(Fact, Option<f32>)>,
    /// Where the next page starts, when this one was full and ordered by recency.
    pub next_cursor: Option<FactCursor>,
}

impl FactPage {
    /// A page of `query`'s list with its total: where the next page starts is known when the
    /// page is full and ordered by recency (not by rank).
    pub(crate) fn new(
        query: &FactQuery,
        (total, total_estimated): (Option<i64>, bool),
        items: Vec<(Fact, Option<f32>)>,
    ) -> FactPage {
        let full = items.len() as i64 == query.limit;
        let next_cursor = (full && query.search.is_none())
            .then(|| items.last().map(|(fact, _)| FactCursor::after(fact)))
            .flatten();
        FactPage {
            total,
            total_estimated,
            items,
            next_cursor,
        }
    }

    /// The page as the original service's list shows it: the total (0 with `count=none`) and
    /// the facts without ranks.
    pub fn into_page(self) -> Page<Fact> {
        Page {
            total: self.total.unwrap_or_default(),
            items: self.items.into_iter().map(|(fact, _)| fact).collect(),
        }
    }
}

/// A tag and how many facts carry it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TagCount {
    /// The tag as stored.
    pub tag: String,
    /// Facts carrying it.
    pub count: i64,
}

/// Tasks or facts, for operations that apply to either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// Rows of the `tasks` table.
    Task,
    /// Rows of the `facts` table.
    Fact,
}

/// Escapes `%`, `_` and `\` so that a LIKE pattern matches the text literally.
pub fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_and_the_escape_character_are_escaped() {
        assert_eq!(like_literal(r"50%_off\now"), r"50\%\_off\\now");
        assert_eq!(like_literal("plain"), "plain");
    }
}
